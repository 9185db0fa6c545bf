"""TLS for the SMTP listeners (RFC 3207 STARTTLS, RFC 8314 implicit TLS).

With no certificate configured, a self-signed one for `smtp_hostname` is created under the
secrets directory on first start and reused afterwards (the key is written 0600).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from VEZEPyEmail.app.settings import EmailSettings

CERT_NAME = "smtp-tls.crt"
KEY_NAME = "smtp-tls.key"
#: Self-signed dev certificates live long enough not to surprise anyone mid-project.
SELF_SIGNED_DAYS = 825


def certificate_paths(settings: EmailSettings) -> tuple[Path, Path]:
    """The PEM certificate and key to serve: configured ones, or the self-signed pair."""
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        return settings.tls_cert_file, settings.tls_key_file
    directory = settings.resolved_secrets_dir
    cert, key = directory / CERT_NAME, directory / KEY_NAME
    if not (cert.is_file() and key.is_file()):
        _write_self_signed(cert, key, hostname=settings.smtp_hostname, host=settings.smtp_host)
    return cert, key


def _write_self_signed(cert_path: Path, key_path: Path, *, hostname: str, host: str) -> None:
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    alt_names: list[x509.GeneralName] = [x509.DNSName(hostname), x509.DNSName("localhost")]
    for literal in {host, "127.0.0.1"}:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(literal)))
        except ValueError:
            continue
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=SELF_SIGNED_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Key first, created 0600 and renamed into place: a concurrent starter sees either no
    # file or a whole one, and never a world-readable key.
    _atomic_write(key_path, key_pem, mode=0o600)
    _atomic_write(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _atomic_write(path: Path, data: bytes, *, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def server_context(settings: EmailSettings) -> ssl.SSLContext:
    """The server-side TLS context shared by STARTTLS and SMTPS (TLS 1.2 or newer)."""
    cert, key = certificate_paths(settings)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
