"""Two-factor authentication: TOTP (RFC 6238) and single-use recovery codes.

A code is accepted for the current 30-second step or one step either side (clock drift), and
only for a step later than the last one accepted, so an observed code cannot be replayed
(RFC 6238 section 5.2). Recovery codes are stored Argon2-hashed and shown once.
"""

from __future__ import annotations

import hmac
import secrets
import time
from datetime import UTC, datetime

import pyotp
import qrcode
import qrcode.image.svg
from markupsafe import Markup
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.errors import BadRequest
from VEZEPyUniQVerse.db.models import RecoveryCode, User
from VEZEPyUniQVerse.services.accounts.service import hash_secret, verify_password

ISSUER = "VEZE UniQVerse"
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, *, handle: str, mail_domain: str) -> str:
    """The `otpauth://` URI authenticator apps read from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=f"{handle}@{mail_domain}", issuer_name=ISSUER)


def qr_svg(data: str) -> Markup:
    """An inline SVG QR code of `data` (no raster library needed)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    svg: str = image.to_string(encoding="unicode")
    # qrcode builds the SVG from coordinates only (`data` is encoded into the modules, never
    # copied as text): safe to place into the page as markup.
    return Markup(svg)  # noqa: S704


def grouped(secret: str) -> str:
    """The secret in groups of four, for typing it by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def matching_step(secret: str, code: str, *, last_step: int | None, now: float) -> int | None:
    """The time step `code` belongs to, if it is valid now and newer than `last_step`."""
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(datetime.fromtimestamp(now, UTC))
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if last_step is not None and step <= last_step:
                return None  # replay of a code already used (or an older one)
            return step
    return None


def accept_code(user: User, code: str) -> bool:
    """Check a TOTP code for an enrolled (or enrolling) user and remember its step."""
    if user.totp_secret is None:
        return False
    step = matching_step(user.totp_secret, code, last_step=user.totp_last_step, now=time.time())
    if step is None:
        return False
    user.totp_last_step = step
    return True


def begin_enrolment(user: User) -> str:
    """A fresh secret, kept on the account but not active until a code confirms it."""
    if user.totp_enabled:
        raise BadRequest("Two-factor authentication is already on.")
    user.totp_secret = new_secret()
    user.totp_last_step = None
    return user.totp_secret


def new_recovery_code() -> str:
    raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _compact(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


async def confirm_enrolment(db: AsyncSession, *, user: User, code: str) -> list[str]:
    """Turn TOTP on once a code from the app checks out; returns the new recovery codes."""
    if user.totp_enabled:
        raise BadRequest("Two-factor authentication is already on.")
    if user.totp_secret is None:
        raise BadRequest("Start the set-up again: there is no pending secret.")
    if not accept_code(user, code):
        raise BadRequest(
            "That code does not match. Check the clock of your phone and type the current code."
        )
    user.totp_enabled = True
    user.updated_at = datetime.now(UTC)
    return await replace_recovery_codes(db, user=user)


async def replace_recovery_codes(db: AsyncSession, *, user: User) -> list[str]:
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        db.add(RecoveryCode(user_id=user.id, code_hash=await hash_secret(_compact(code))))
    await db.flush()
    return codes


async def disable(db: AsyncSession, *, user: User) -> None:
    """Turn TOTP off and drop the secret and the recovery codes (caller checked the password)."""
    user.totp_enabled = False
    user.totp_secret = None
    user.totp_last_step = None
    user.updated_at = datetime.now(UTC)
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    await db.flush()


async def use_recovery_code(db: AsyncSession, *, user: User, code: str) -> bool:
    """Spend one unused recovery code; False when none matches."""
    compact = _compact(code)
    if len(compact) != 10:
        return False
    rows = await db.scalars(
        select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    )
    for row in rows:
        if await verify_password(row.code_hash, compact):
            row.used_at = datetime.now(UTC)
            await db.flush()
            return True
    return False


async def unused_recovery_codes(db: AsyncSession, *, user: User) -> int:
    rows = await db.scalars(
        select(RecoveryCode.id).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
        )
    )
    return len(list(rows))
