"""Sender Rewriting Scheme: forwarded mail leaves with an envelope sender of our own domain.

A Sieve `redirect` of mail from `carol@example.org` to a remote address is sent by us, from our
address; with Carol's reverse-path the destination's SPF check (RFC 7208) of example.org fails.
SRS (the guarded scheme of Shevek's paper, as libsrs2 and postsrsd implement it, here through
`srslib`) sends it as `SRS0=HHHHHH=TT=example.org=carol@<our domain>`: a bounce to that address
reaches us, and we pass it on to Carol. HHHHHH is an HMAC of the rest under our secret, TT a day
stamp, so nobody can mint a forwarding address through us (no open relay), and one stops
working after `VALIDITY_DAYS`.

The secret is a file in the secrets directory, created on first start (as the DKIM key), so
every process of the installation shares it and backups carry it. Its first line signs; any
further lines are earlier secrets, still accepted when a bounce comes back, so a rotation
(`python -m VEZEPyEmail.services.srs rotate`) breaks no address already handed out.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import srslib  # type: ignore[import-untyped]

from VEZEPyCore.settings import read_or_create_secret

KEY_FILE_NAME = "srs.key"
#: Characters of the base64 HMAC kept (compared case-insensitively, about 5 bits each).
#: libsrs2 keeps 4; 6 makes a guessed address ~1 in 10^9 for a few more octets.
HASH_LENGTH = 6
#: A bounce may come this many days after the forward (libsrs2's default).
VALIDITY_DAYS = 21
#: The hash of an SRS0 or SRS1 local part (we check its length: srslib accepts any).
_HASH = re.compile(r"^SRS[01][-+=]([^=]*)=", re.IGNORECASE)


@dataclass(frozen=True)
class Srs:
    """Rewrites reverse-paths for forwarding and reverses our SRS addresses."""

    domain: str
    engine: Any

    @classmethod
    def with_secret(cls, domain: str, secret: str, earlier: Sequence[str] = ()) -> Srs:
        """Signing with `secret`; addresses made with an `earlier` one still reverse."""
        engine = srslib.SRS(
            secret,
            prev_secrets=list(earlier),
            validity_days=VALIDITY_DAYS,
            hash_length=HASH_LENGTH,
        )
        return cls(domain.lower(), engine)

    def forward(self, envelope_from: str) -> str:
        """The reverse-path to send forwarded mail with.

        Unchanged for the null sender (a bounce or auto-reply, RFC 5321 4.5.5: it must stay
        null) and for our own addresses (our SPF already covers them); anything else SRS0, or
        SRS1 when it already is someone's SRS address (bounces then go to its first hop).
        """
        sender = bare(envelope_from)
        if not sender or "@" not in sender or domain_of(sender) == self.domain:
            return sender
        rewritten: str = self.engine.forward(sender, self.domain)
        return rewritten

    def is_srs(self, address: str) -> bool:
        """True for an address of our domain whose local part claims to be SRS."""
        local, _, domain = bare(address).rpartition("@")
        return domain.lower() == self.domain and _HASH.match(local) is not None

    def reverse(self, address: str) -> str | None:
        """Where a bounce to our SRS `address` goes, or None when it is not one we made."""
        if not self.is_srs(address):
            return None
        local = bare(address).rpartition("@")[0]
        found = _HASH.match(local)
        if found is None or len(found.group(1)) != HASH_LENGTH:
            return None  # srslib checks only as many characters as the address carries
        try:
            target: str = self.engine.reverse(bare(address))
        except srslib.Error:
            return None
        # A reversed address must be a plain, usable mailbox: never our own SRS again.
        if "@" not in target or any(ch in target for ch in "\r\n\0 <>"):
            return None
        return target


def bare(address: str) -> str:
    return address.strip().strip("<>").strip()


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


def key_path(settings: Any) -> Path:
    path: Path = settings.resolved_secrets_dir / KEY_FILE_NAME
    return path


def secrets_in(text: str) -> list[str]:
    """The secrets of a key file: one per line, the signing one first."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_srs(settings: Any) -> Srs:
    """The installation's SRS, its secret created (0600) on first use. Blocking file I/O."""
    current, *earlier = secrets_in(read_or_create_secret(key_path(settings)))
    return Srs.with_secret(str(settings.mail_domain), current, earlier)


def srs_of(state: Any) -> Srs:
    """The SRS kept on `state` (app.state, or a worker's), made on first use there."""
    found = getattr(state, "srs", None)
    if isinstance(found, Srs):
        return found
    made = load_srs(state.settings)
    # A frozen context (DeliveryContext) cannot keep it: it is made again next time.
    with contextlib.suppress(AttributeError):
        state.srs = made
    return made
