"""The payment provider's webhook signature: HMAC-SHA256 over the timestamp and raw body.

`X-Veze-Signature` is `hex(HMAC-SHA256(secret, f"{timestamp}.".encode() + raw_body))` and
`X-Veze-Timestamp` the Unix time (seconds) the provider signed at. Signing the timestamp with
the body stops an old, captured request from being re-sent later (it falls outside the
tolerance window), and the event ids stored by the service refuse a re-send inside it.
The body is verified exactly as received: parsing and re-serialising JSON could change bytes.
"""

from __future__ import annotations

import hashlib
import hmac

from VEZEPyCore.errors import AppError

SIGNATURE_HEADER = "X-Veze-Signature"
TIMESTAMP_HEADER = "X-Veze-Timestamp"
SHA256_HEX_LENGTH = 64
MAX_TIMESTAMP_DIGITS = 12


class WebhookRejected(AppError):
    status_code, code = 400, "webhook_rejected"


class BadSignature(WebhookRejected):
    status_code, code = 401, "bad_signature"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The signature a provider sends for `body` signed at `timestamp` (also used by tests)."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(
    *,
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance_seconds: int,
) -> int:
    """The signed timestamp when the signature is right and fresh; raises otherwise."""
    if not timestamp or not signature:
        raise BadSignature(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    if not timestamp.isdigit() or len(timestamp) > MAX_TIMESTAMP_DIGITS:
        raise WebhookRejected(f"{TIMESTAMP_HEADER} must be Unix seconds")
    candidate = signature.strip().lower()
    if len(candidate) != SHA256_HEX_LENGTH:
        raise BadSignature("the signature is not a SHA-256 hex digest")
    # Checked before the clock: an unsigned request learns nothing about our time window.
    if not hmac.compare_digest(sign(secret, timestamp, body), candidate):
        raise BadSignature("the signature does not match the body")
    signed_at = int(timestamp)
    if abs(now - signed_at) > tolerance_seconds:
        raise WebhookRejected(
            f"the timestamp is outside the {tolerance_seconds} s tolerance window",
            code="stale_timestamp",
        )
    return signed_at
