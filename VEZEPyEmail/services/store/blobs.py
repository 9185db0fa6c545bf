"""Content-addressed raw-message store: `<root>/<key[:2]>/<key>.eml`, key = SHA-256 hex.

`put` returns only once the bytes and the directory entry are on disk (file fsync, atomic
`os.replace`, directory fsync): the SMTP layer may say 250 after it (RFC 5321 section 6.1,
"the receiver-SMTP MUST NOT lose the message" once it has accepted responsibility).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from pathlib import Path

_KEY = re.compile(r"[0-9a-f]{64}")


class BlobNotFound(LookupError):
    """No blob is stored under that key."""


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError("a blob key is 64 lower-case hex digits")
        return self.root / key[:2] / f"{key}.eml"

    async def put(self, raw: bytes) -> str:
        """Store `raw` durably and return its key; identical bytes are stored once."""
        key = hashlib.sha256(raw).hexdigest()
        await asyncio.to_thread(self._write, key, raw)
        return key

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def _write(self, key: str, raw: bytes) -> None:
        path = self.path_for(key)
        if path.is_file() and path.stat().st_size == len(raw):
            return  # same content address, same length: already durable
        directory = path.parent
        directory.mkdir(parents=True, exist_ok=True)
        descriptor, temp_name = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_directory(directory)
        _fsync_directory(self.root)  # the shard directory's own entry may be new


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
