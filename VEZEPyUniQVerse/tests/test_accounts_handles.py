from __future__ import annotations

import pytest

from VEZEPyCore.errors import BadRequest
from VEZEPyUniQVerse.services.accounts.handles import RESERVED_HANDLES, normalise_handle


@pytest.mark.parametrize(
    ("raw", "handle"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("bob.smith-2_x", "bob.smith-2_x"),
        ("a" * 32, "a" * 32),
    ],
)
def test_valid_handles_are_lower_cased(raw: str, handle: str) -> None:
    assert normalise_handle(raw) == handle


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("ab", "3-32 characters"),
        ("a" * 33, "3-32 characters"),
        ("bad handle", "only letters, digits"),
        ("alice+tag", "only letters, digits"),
        ("élise", "only letters, digits"),
        ("1alice", "start with a letter"),
        ("_alice", "start with a letter"),
        ("alice.", "end with a dot"),
        ("al..ice", "two dots"),
        ("Admin", "reserved"),
        ("MAILER-DAEMON", "reserved"),
    ],
)
def test_invalid_handles_say_why(raw: str, reason: str) -> None:
    with pytest.raises(BadRequest) as refused:
        normalise_handle(raw)
    assert reason in refused.value.detail


def test_every_reserved_handle_is_refused() -> None:
    for handle in RESERVED_HANDLES:
        with pytest.raises(BadRequest):
            normalise_handle(handle)
