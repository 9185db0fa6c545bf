"""Uploaded attachments on disk beside the mail store: `<mail_dir>/uploads/<owner>/<id>.{bin,json}`.

An upload lives in its owner's own directory (named by a hash of the address), so an id of
someone else's upload finds nothing: another user's id is indistinguishable from a missing one.
The bytes are written first and the metadata last (each atomically), so a metadata file always
names complete bytes. Uploads are scratch space: once sent, the bytes are part of the message
in the blob store; unused ones are deleted after the TTL by `sweep`. Files under the mail
directory are on the same shared volume as the blobs when several replicas run.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import mimetypes
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from VEZEPyEmail.services.messages.detail import safe_filename

_ID = re.compile(r"[A-Za-z0-9_-]{20,64}")
#: RFC 2045 section 5.1 token characters, lower-cased; anything else becomes octet-stream.
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
#: Pending (not yet expired) uploads one user may hold at a time.
MAX_PENDING_UPLOADS = 200
OCTET_STREAM = "application/octet-stream"


class UploadNotFound(LookupError):
    """No live upload with that id belongs to that user."""


class UploadQuotaExceeded(ValueError):
    """The user holds too many pending uploads (or too many bytes of them)."""


@dataclass(frozen=True)
class StoredUpload:
    id: str
    filename: str
    content_type: str
    size: int
    created_at: float


def clean_content_type(content_type: str | None, filename: str) -> str:
    """A syntactically valid `type/subtype` (RFC 2045), guessed from the name if need be."""
    value = (content_type or "").split(";", 1)[0].strip().lower()
    if _CONTENT_TYPE.fullmatch(value) and not value.startswith("multipart/"):
        return value
    guessed, _ = mimetypes.guess_type(filename)
    return guessed if guessed and _CONTENT_TYPE.fullmatch(guessed) else OCTET_STREAM


def derived_id(owner: str, source: str, index: int) -> str:
    """A stable id for an attachment copied out of a stored message (drafts, forwards), so
    asking twice reuses one upload instead of piling up copies."""
    digest = hashlib.sha256(f"{owner.lower()}\0{source}\0{index}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:32]


class UploadStore:
    def __init__(self, root: Path, *, ttl_seconds: float, max_pending_bytes: int) -> None:
        self.root = Path(root)
        self.ttl_seconds = ttl_seconds
        self.max_pending_bytes = max_pending_bytes

    # -- paths ------------------------------------------------------------------------------

    def _owner_dir(self, owner: str) -> Path:
        return self.root / hashlib.sha256(owner.strip().lower().encode()).hexdigest()[:40]

    def _paths(self, owner: str, upload_id: str) -> tuple[Path, Path]:
        if not _ID.fullmatch(upload_id):
            raise UploadNotFound(upload_id)
        directory = self._owner_dir(owner)
        return directory / f"{upload_id}.bin", directory / f"{upload_id}.json"

    # -- API ----------------------------------------------------------------------------------

    async def put(
        self,
        owner: str,
        *,
        data: bytes,
        filename: str,
        content_type: str | None,
        upload_id: str | None = None,
    ) -> StoredUpload:
        """Store `data` for `owner`; `upload_id` (from `derived_id`) reuses a live copy."""
        name = safe_filename(filename, 0)
        upload = StoredUpload(
            id=upload_id or secrets.token_urlsafe(24),
            filename=name,
            content_type=clean_content_type(content_type, name),
            size=len(data),
            created_at=time.time(),
        )
        return await asyncio.to_thread(self._put, owner, upload, data, upload_id is not None)

    async def get(self, owner: str, upload_id: str) -> tuple[StoredUpload, bytes]:
        return await asyncio.to_thread(self._get, owner, upload_id)

    async def info(self, owner: str, upload_id: str) -> StoredUpload:
        """The metadata of a live upload (UploadNotFound otherwise), without its bytes."""
        return await asyncio.to_thread(self._info, owner, upload_id)

    async def delete(self, owner: str, upload_id: str) -> bool:
        return await asyncio.to_thread(self._delete, owner, upload_id)

    async def sweep(self) -> int:
        """Delete every expired upload (and stray temporary files); how many went."""
        return await asyncio.to_thread(self._sweep)

    # -- blocking parts (run in a thread) ------------------------------------------------------

    def _read_meta(self, path: Path) -> StoredUpload | None:
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
            return StoredUpload(
                id=str(values["id"]),
                filename=str(values["filename"]),
                content_type=str(values["content_type"]),
                size=int(values["size"]),
                created_at=float(values["created_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _expired(self, upload: StoredUpload, now: float) -> bool:
        return upload.created_at + self.ttl_seconds < now

    def _live(self, directory: Path, now: float) -> list[StoredUpload]:
        uploads: list[StoredUpload] = []
        with contextlib.suppress(FileNotFoundError):
            for meta in directory.glob("*.json"):
                upload = self._read_meta(meta)
                if upload is not None and not self._expired(upload, now):
                    uploads.append(upload)
        return uploads

    def _put(self, owner: str, upload: StoredUpload, data: bytes, reuse: bool) -> StoredUpload:
        data_path, meta_path = self._paths(owner, upload.id)
        now = time.time()
        if reuse:
            existing = self._read_meta(meta_path)
            if existing is not None and not self._expired(existing, now) and data_path.is_file():
                return existing
        directory = data_path.parent
        live = [item for item in self._live(directory, now) if item.id != upload.id]
        if len(live) >= MAX_PENDING_UPLOADS:
            raise UploadQuotaExceeded(
                f"too many pending uploads (at most {MAX_PENDING_UPLOADS}); send or delete some"
            )
        if sum(item.size for item in live) + upload.size > self.max_pending_bytes:
            raise UploadQuotaExceeded(
                f"pending uploads would exceed {self.max_pending_bytes} bytes; send or delete some"
            )
        directory.mkdir(parents=True, exist_ok=True)
        _write_atomic(data_path, data)
        meta = {
            "id": upload.id,
            "filename": upload.filename,
            "content_type": upload.content_type,
            "size": upload.size,
            "created_at": upload.created_at,
        }
        _write_atomic(meta_path, json.dumps(meta).encode())
        return upload

    def _info(self, owner: str, upload_id: str) -> StoredUpload:
        data_path, meta_path = self._paths(owner, upload_id)
        upload = self._read_meta(meta_path)
        if upload is None or self._expired(upload, time.time()) or not data_path.is_file():
            raise UploadNotFound(upload_id)
        return upload

    def _get(self, owner: str, upload_id: str) -> tuple[StoredUpload, bytes]:
        upload = self._info(owner, upload_id)
        data_path, _meta_path = self._paths(owner, upload_id)
        try:
            data = data_path.read_bytes()
        except FileNotFoundError as exc:
            raise UploadNotFound(upload_id) from exc
        return upload, data

    def _delete(self, owner: str, upload_id: str) -> bool:
        data_path, meta_path = self._paths(owner, upload_id)
        existed = meta_path.is_file()
        meta_path.unlink(missing_ok=True)  # the metadata first: the upload is gone at once
        data_path.unlink(missing_ok=True)
        return existed

    def _sweep(self) -> int:
        now = time.time()
        removed = 0
        if not self.root.is_dir():
            return 0
        for directory in self.root.iterdir():
            if not directory.is_dir():
                continue
            for path in directory.iterdir():
                if path.suffix == ".json":
                    upload = self._read_meta(path)
                    if upload is None or self._expired(upload, now):
                        path.unlink(missing_ok=True)
                        path.with_suffix(".bin").unlink(missing_ok=True)
                        removed += 1
                elif path.suffix == ".bin" and not path.with_suffix(".json").exists():
                    # bytes whose metadata never landed (a crash mid-put), once old enough
                    if _age(path, now) > self.ttl_seconds:
                        path.unlink(missing_ok=True)
                elif path.name.startswith(".tmp-") and _age(path, now) > 3600:
                    path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                directory.rmdir()  # only succeeds when empty
        return removed


def _age(path: Path, now: float) -> float:
    try:
        return now - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _write_atomic(path: Path, data: bytes) -> None:
    descriptor, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
