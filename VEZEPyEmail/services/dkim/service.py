"""DKIM keys and signatures (RFC 6376).

The key is a 2048-bit RSA key created on first start under the secrets directory (mode 0600),
one file per selector, so a rotation publishes a new selector beside the old one. The public
half is published as a TXT record at `<selector>._domainkey.<domain>` (RFC 6376 3.6.1).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

import dkim  # type: ignore[import-untyped]  # dkimpy ships no type information
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from VEZEPyEmail.app.settings import EmailSettings

KEY_BITS = 2048
#: Headers covered by the signature (RFC 6376 5.4.1 recommends these); From is required.
SIGNED_HEADERS = (
    b"from",
    b"to",
    b"cc",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"in-reply-to",
    b"references",
    b"mime-version",
    b"content-type",
    b"content-transfer-encoding",
)


@dataclass(frozen=True)
class DkimKey:
    domain: str
    selector: str
    private_pem: bytes
    #: SubjectPublicKeyInfo DER, base64: the `p=` tag of the TXT record.
    public_b64: str

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def txt_record(self) -> str:
        """The TXT record's value (RFC 6376 3.6.1)."""
        return f"v=DKIM1; k=rsa; p={self.public_b64}"

    def sign(self, raw: bytes) -> bytes:
        """`raw` with a DKIM-Signature header prepended (relaxed/relaxed, rsa-sha256)."""
        signature: bytes = dkim.sign(
            raw,
            self.selector.encode(),
            self.domain.encode(),
            self.private_pem,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=list(SIGNED_HEADERS),
        )
        return signature + raw


def key_path(settings: EmailSettings) -> Path:
    return settings.resolved_secrets_dir / f"dkim-{settings.dkim_selector}.pem"


def load_or_create_key(settings: EmailSettings) -> DkimKey:
    """The signing key for `settings.mail_domain`, created (0600) on first use."""
    path = key_path(settings)
    pem = path.read_bytes() if path.exists() else _create_key_file(path)
    private = serialization.load_pem_private_key(pem, password=None)
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(
        domain=settings.mail_domain.lower(),
        selector=settings.dkim_selector,
        private_pem=pem,
        public_b64=base64.b64encode(public_der).decode("ascii"),
    )


def _create_key_file(path: Path) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1: what dkimpy parses
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link, not rename: when two processes start at once the first key wins for both.
        os.link(tmp, path)
    except FileExistsError:
        pem = path.read_bytes()
    finally:
        tmp.unlink(missing_ok=True)
    return pem
