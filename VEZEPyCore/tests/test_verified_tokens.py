"""The verifier remembers a verified token briefly, and never past what verifying would allow."""

from __future__ import annotations

import asyncio
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from VEZEPyCore.auth.tokens import TokenVerifier, VerifiedTokens, issue_hs256_token
from VEZEPyCore.errors import Unauthorized

SECRET = "verified-tokens-" + "s" * 40
ISSUER = "http://portal.test"
AUDIENCE = "veze-email"


def verifier(
    *, seconds: float = 60, entries: int = 16, leeway: int = 0, jwks: object = None
) -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        secret=SECRET,
        jwks=jwks,  # type: ignore[arg-type]
        demo=False,
        mail_domain="vezeuniqverse.com",
        leeway_seconds=leeway,
        verified=VerifiedTokens(seconds=seconds, max_entries=entries),
    )


def token(subject: str = "alice@vezeuniqverse.com", **claims: object) -> str:
    ttl = int(claims.pop("ttl", 300))  # type: ignore[call-overload]
    return issue_hs256_token(
        secret=SECRET,
        issuer=ISSUER,
        subject=subject,
        audience=AUDIENCE,
        scopes=("email.read",),
        ttl_seconds=ttl,
        extra_claims=claims,
    )


async def test_a_verified_token_is_remembered_and_a_refused_one_is_not() -> None:
    checker = verifier()
    good = token()
    first = await checker.verify(good)
    assert await checker.verify(good) is first  # the remembered principal, not a new check
    assert len(checker.verified) == 1

    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    for _attempt in range(2):
        with pytest.raises(Unauthorized):
            await checker.verify(forged)
    other_audience = issue_hs256_token(
        secret=SECRET, issuer=ISSUER, subject="x", audience="veze-game", scopes=()
    )
    with pytest.raises(Unauthorized):
        await checker.verify(other_audience)
    assert len(checker.verified) == 1  # only the token that passed every check


async def test_a_remembered_token_never_outlives_its_exp() -> None:
    checker = verifier(seconds=60)  # far longer than the token lives
    short = token(ttl=2)
    await checker.verify(short)
    remembered = checker.verified.get(short)
    assert remembered is not None
    assert remembered.until <= time.monotonic() + 2.01
    deadline = time.monotonic() + 15
    refused: Unauthorized | None = None
    while refused is None:  # bounded wait for the token's exp to pass
        assert time.monotonic() < deadline, "an expired token was still accepted"
        await asyncio.sleep(0.1)
        try:
            await checker.verify(short)
        except Unauthorized as error:
            refused = error
    assert "expired" in refused.detail


async def test_a_token_inside_the_exp_leeway_is_verified_but_not_remembered() -> None:
    checker = verifier(leeway=30)
    late = token(exp=int(time.time()) - 5)
    assert (await checker.verify(late)).subject == "alice@vezeuniqverse.com"
    assert len(checker.verified) == 0


async def test_the_memory_is_bounded_oldest_first() -> None:
    checker = verifier(entries=3)
    tokens = [token(f"user{n}@vezeuniqverse.com") for n in range(5)]
    principals = [await checker.verify(each) for each in tokens]
    assert len(checker.verified) == 3
    assert checker.verified.get(tokens[0]) is None and checker.verified.get(tokens[1]) is None
    assert await checker.verify(tokens[4]) is principals[4]
    assert await checker.verify(tokens[0]) is not principals[0]  # checked again


async def test_zero_seconds_turns_the_memory_off() -> None:
    checker = verifier(seconds=0)
    good = token()
    assert await checker.verify(good) is not await checker.verify(good)
    assert len(checker.verified) == 0


class SwappableKeys:
    """A key source (the `KeySource` protocol) whose published set the test replaces."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys

    async def key_set(self, *, refresh: bool = False) -> KeySet:
        return self.keys


async def test_a_changed_key_set_is_not_bypassed_by_the_memory() -> None:
    old, new = RSAKey.generate_key(2048), RSAKey.generate_key(2048)
    old.ensure_kid()
    new.ensure_kid()
    source = SwappableKeys(KeySet([old]))
    checker = verifier(jwks=source)
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc:game", "exp": now + 300, "iat": now}
    signed = jwt.encode({"alg": "RS256", "kid": old.kid}, claims, old)
    first = await checker.verify(signed)
    assert await checker.verify(signed) is first

    source.keys = KeySet([new])  # the old key is withdrawn (rotation, compromise)
    with pytest.raises(Unauthorized, match="unknown key"):
        await checker.verify(signed)
