"""Rotating the SRS secret: a new signing secret, the earlier ones kept for returning bounces.

A bounce may come back up to `VALIDITY_DAYS` after the forward, so the secret that signed it
must still be accepted that long. Rotation puts a new secret first and keeps
`KEPT_EARLIER_SECRETS` earlier ones: rotating no more often than every `VALIDITY_DAYS` days
loses nothing. The file is replaced atomically (written beside it, fsynced, renamed); running
processes read it when they start.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from VEZEPyEmail.services.srs.service import secrets_in

#: Earlier secrets kept after a rotation (each still reverses the addresses it made).
KEPT_EARLIER_SECRETS = 2


def rotate(path: Path) -> int:
    """Put a new signing secret at the top of the key file at `path`; how many earlier
    secrets it now keeps."""
    earlier = secrets_in(path.read_text()) if path.exists() else []
    kept = earlier[:KEPT_EARLIER_SECRETS]
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join([secrets.token_urlsafe(48), *kept]) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(candidate, path)
    except BaseException:
        candidate.unlink(missing_ok=True)
        raise
    return len(kept)
