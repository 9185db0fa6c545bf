"""The password strength rule: long enough, not the handle, not a famous password, some variety.

Length beats composition rules (NIST SP 800-63B section 5.1.1.2): no "one digit and one symbol"
requirement, but a refusal of passwords that appear at the top of every breach list and of
trivially patterned ones.
"""

from __future__ import annotations

from itertools import pairwise

from VEZEPyCore.errors import BadRequest

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MIN_DISTINCT_CHARACTERS = 5

#: The most common passwords of public breach corpora (at least 10 characters, or ones that
#: reach 10 with digits appended), lower-case. Small on purpose: a long list belongs in a file.
COMMON_PASSWORDS = frozenset(
    {
        "password",
        "passw0rd",
        "password1",
        "password12",
        "password123",
        "password1234",
        "1234567890",
        "0987654321",
        "12345678910",
        "123456789a",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "qwertyuiop",
        "qwerty1234",
        "qwerty12345",
        "qwerty123456",
        "asdfghjkl",
        "asdfghjkl1",
        "zxcvbnm123",
        "iloveyou",
        "iloveyou12",
        "letmein",
        "letmein123",
        "welcome",
        "welcome123",
        "welcome1234",
        "changeme",
        "changeme123",
        "trustno1",
        "football",
        "baseball",
        "basketball",
        "superman",
        "batman",
        "starwars",
        "princess",
        "sunshine",
        "whatever",
        "dragon",
        "monkey",
        "shadow",
        "master",
        "michael",
        "jennifer",
        "computer",
        "internet",
        "secret",
        "administrator",
        "admin",
        "admin12345",
        "login",
        "abc123",
        "abcd1234",
        "abcdefghij",
        "qazwsxedc",
        "q1w2e3r4t5",
        "1q2w3e4r",
        "zaq12wsx",
        "p@ssw0rd",
        "p@ssword",
        "correcthorsebatterystaple",
        "veze",
        "vezeuniqverse",
        "uniqverse",
    }
)


def password_problem(password: str, *, handle: str) -> str | None:
    """Why `password` is too weak for the account `handle`, or None when it will do."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    folded = password.lower()
    if handle and handle.lower() in folded:
        return "The password must not contain your handle."
    if _is_common(folded):
        return "This is one of the most common passwords; choose one nobody would guess."
    if len(set(folded)) < MIN_DISTINCT_CHARACTERS or _is_sequence(folded):
        return (
            f"Use more variety: at least {MIN_DISTINCT_CHARACTERS} different characters, "
            "not a run like abcdefghij."
        )
    return None


def check_password(password: str, *, handle: str) -> None:
    """400 with the rule `password` breaks, if any."""
    problem = password_problem(password, handle=handle)
    if problem is not None:
        raise BadRequest(problem)


def _is_common(folded: str) -> bool:
    compact = "".join(folded.split())
    # "Password2024!" is still "password": drop what people append to a famous word.
    stem = compact.rstrip("0123456789!@#$%^&*.?_-")
    return compact in COMMON_PASSWORDS or stem in COMMON_PASSWORDS


def _is_sequence(folded: str) -> bool:
    steps = {ord(b) - ord(a) for a, b in pairwise(folded)}
    return len(steps) == 1 and steps <= {-1, 0, 1}
