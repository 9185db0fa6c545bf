"""The backup archive: a gzipped tar with `manifest.json` first, then every part.

Layout: `databases/<service>.sqlite3` or `databases/<service>.pgdump`, and
`files/<directory>/<relative path>` for the mail blobs and the secrets. The manifest lists each
file with its size, mode and SHA-256. Restore extracts into a staging folder, checks every
checksum and that nothing is missing or extra, and only then replaces the targets. The
archive holds the secrets and signing keys: it is written readable by its owner only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from VEZEPyCore.backup.databases import DatabaseError, dump_database, kind_of, load_database
from VEZEPyCore.backup.plan import BackupPlan

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK = 1024 * 1024


class BackupError(RuntimeError):
    """The archive is damaged or incomplete, or a target cannot be restored."""


@dataclass(frozen=True)
class Entry:
    path: str  # inside the archive
    sha256: str
    size: int
    mode: int

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "size": self.size, "mode": self.mode}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _entry(path: Path, name: str) -> Entry:
    info = path.stat()
    return Entry(name, _sha256(path), info.st_size, stat.S_IMODE(info.st_mode))


def _dump_extension(url: str) -> str:
    return "sqlite3" if kind_of(url) == "sqlite" else "pgdump"


def _directory_files(root: Path) -> list[Path]:
    if not root.exists():
        return []
    files = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            raise BackupError(f"{path}: symbolic links are not backed up")
        if path.is_file():
            files.append(path)
    return files


# -- create ---------------------------------------------------------------------------------


def create_backup(plan: BackupPlan, output: Path) -> dict[str, Any]:
    """Write one archive of every database and directory in `plan`; return its manifest."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="veze-backup-") as scratch:
        staging = Path(scratch)
        databases: dict[str, Any] = {}
        members: list[tuple[Path, Entry]] = []
        for service, url in sorted(plan.databases.items()):
            name = f"databases/{service}.{_dump_extension(url)}"
            dump = staging / name
            dump.parent.mkdir(parents=True, exist_ok=True)
            try:
                dump_database(url, dump)
            except DatabaseError as exc:
                raise BackupError(f"{service} database: {exc}") from exc
            entry = _entry(dump, name)
            databases[service] = {"kind": kind_of(url), **entry.as_json()}
            members.append((dump, entry))
        directories: dict[str, Any] = {}
        for label, root in sorted(plan.directories.items()):
            files = []
            for path in _directory_files(root):
                relative = path.relative_to(root).as_posix()
                entry = _entry(path, f"files/{label}/{relative}")
                files.append(entry.as_json())
                members.append((path, entry))
            directories[label] = {"files": files}
        manifest = {
            "format": FORMAT_VERSION,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "databases": databases,
            "directories": directories,
        }
        partial = output.with_name(f".{output.name}.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            body = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mode, info.mtime = len(body), 0o600, int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(body))
            for path, entry in members:
                # The checksum was taken of this file; a blob changing meanwhile is caught at
                # restore (mail blobs are written once and never change).
                tar.add(path, arcname=entry.path, recursive=False)
            tar.close()
            raw.flush()
            os.fsync(raw.fileno())
        partial.replace(output)
    return manifest


# -- verify ---------------------------------------------------------------------------------


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and bool(path.parts)


def _expected_entries(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Archive path -> manifest item; every path must stay inside its part of the archive."""
    entries: dict[str, dict[str, Any]] = {}
    parts = [("databases/", item) for item in manifest.get("databases", {}).values()]
    for label, directory in manifest.get("directories", {}).items():
        parts += [(f"files/{label}/", item) for item in directory["files"]]
    for prefix, item in parts:
        path = str(item["path"])
        if not (path.startswith(prefix) and _safe_member(path) and len(path) > len(prefix)):
            raise BackupError(f"manifest names a path outside the archive's layout: {path!r}")
        entries[path] = item
    return entries


def extract_verified(archive: Path, destination: Path) -> dict[str, Any]:
    """Extract `archive` into `destination` (must be empty), checking it against its manifest."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            return _extract(tar, archive, destination)
    except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
        raise BackupError(f"{archive}: not a readable backup archive ({exc})") from exc


def _extract(tar: tarfile.TarFile, archive: Path, destination: Path) -> dict[str, Any]:
    try:
        handle = tar.extractfile(MANIFEST)
        manifest: dict[str, Any] = json.load(handle) if handle is not None else {}
    except (KeyError, ValueError) as exc:
        raise BackupError(f"{archive}: no readable {MANIFEST}") from exc
    if manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"{archive}: unknown backup format {manifest.get('format')!r}")
    expected = _expected_entries(manifest)
    seen: set[str] = set()
    for member in tar:
        if member.name == MANIFEST:
            continue
        if member.name not in expected or not member.isfile() or not _safe_member(member.name):
            raise BackupError(f"{archive}: unexpected member {member.name!r}")
        source = tar.extractfile(member)
        assert source is not None
        target = destination / member.name
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with target.open("wb") as out:
            while chunk := source.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != expected[member.name]["sha256"]:
            raise BackupError(f"{archive}: checksum mismatch for {member.name}")
        seen.add(member.name)
    missing = set(expected) - seen
    if missing:
        raise BackupError(f"{archive}: missing {sorted(missing)}")
    return manifest


def verify_backup(archive: Path) -> dict[str, Any]:
    """Check every checksum of `archive` without restoring anything; return its manifest."""
    with tempfile.TemporaryDirectory(prefix="veze-verify-") as scratch:
        return extract_verified(archive, Path(scratch))


# -- restore --------------------------------------------------------------------------------


def _directory_is_empty(path: Path) -> bool:
    return not path.exists() or not any(path.iterdir())


def _restore_directory(
    staged: Path, files: list[dict[str, Any]], target: Path, prefix: str
) -> None:
    """Put the directory in place whole: build it beside the target, then swap."""
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.restoring-", dir=target.parent))
    for item in files:
        relative = item["path"][len(prefix) :]
        destination = building / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(staged / item["path"], destination)
        destination.chmod(item["mode"] & 0o777)
    building.chmod(0o700 if prefix == "files/secrets/" else 0o755)
    if target.exists():
        replaced = target.with_name(f".{target.name}.replaced")
        shutil.rmtree(replaced, ignore_errors=True)
        target.replace(replaced)
        building.replace(target)
        shutil.rmtree(replaced)
    else:
        building.replace(target)


def restore_backup(archive: Path, plan: BackupPlan, *, force: bool = False) -> dict[str, Any]:
    """Restore every part of `archive` into the targets of `plan` (the services stopped).

    Nothing is changed unless the whole archive verifies and every target is empty (or
    `force`). Parts of the archive the plan has no target for are an error, not skipped.
    """
    with tempfile.TemporaryDirectory(prefix="veze-restore-") as scratch:
        staged = Path(scratch)
        manifest = extract_verified(archive, staged)
        databases: dict[str, Any] = manifest["databases"]
        directories: dict[str, Any] = manifest["directories"]
        unknown = (set(databases) - set(plan.databases)) | (
            set(directories) - set(plan.directories)
        )
        if unknown:
            raise BackupError(f"nowhere to restore {sorted(unknown)}")
        for service, item in databases.items():
            if kind_of(plan.databases[service]) != item["kind"]:
                raise BackupError(
                    f"{service}: the archive holds a {item['kind']} dump, the target is "
                    f"{kind_of(plan.databases[service])} (restore into the same kind)"
                )
        if not force:
            busy = [
                str(plan.directories[label])
                for label in directories
                if not _directory_is_empty(plan.directories[label])
            ]
            if busy:
                raise BackupError(f"not empty: {busy} (restore with --force to replace)")
        for service, item in sorted(databases.items()):
            try:
                load_database(plan.databases[service], staged / item["path"], force=force)
            except DatabaseError as exc:
                raise BackupError(f"{service} database: {exc}") from exc
        for label, item in sorted(directories.items()):
            _restore_directory(staged, item["files"], plan.directories[label], f"files/{label}/")
    return manifest
