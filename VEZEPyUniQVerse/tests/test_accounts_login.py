from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import OAuthClient, RefreshToken, User, WebSession
from VEZEPyUniQVerse.services.accounts.throttle import (
    DEFAULT_POLICY,
    Budget,
    ThrottlePolicy,
    lock_seconds,
)
from VEZEPyUniQVerse.tests.accounts_helpers import (
    SESSION_COOKIE,
    STRONG_PASSWORD,
    Portal,
    form_error,
    portal,
    unique,
)

WRONG = "Wrong handle or password."


async def test_login_starts_a_session_and_goes_on_to_next(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        _, handle = await app.signed_up("alice")
        browser = await app.browser()
        before = await browser.get("/account")
        form = await browser.get("/login", next="/oauth/authorize?client_id=webmail")
        response = await browser.login(
            handle.upper(), next_path="/oauth/authorize?client_id=webmail"
        )
        after = await browser.get("/account")
        again = await browser.get("/login", next="/account")
        events = await app.audit("login.success")

    assert before.status_code == 303
    assert before.headers["location"] == "/login?next=%2Faccount"
    assert 'name="next" value="/oauth/authorize?client_id=webmail"' in form.text
    assert response.status_code == 303
    assert response.headers["location"] == "/oauth/authorize?client_id=webmail"
    assert f"{SESSION_COOKIE}=" in response.headers["set-cookie"]
    assert after.status_code == 200
    assert again.headers["location"] == "/account"  # already signed in: straight on
    assert [(event.actor, event.ip) for event in events] == [(handle, browser.ip)]


async def test_login_errors_are_the_same_for_unknown_handles_wrong_passwords_and_disabled(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        _, handle = await app.signed_up("bob")
        _, disabled = await app.signed_up("dora")
        async with app.db() as db:
            await db.execute(update(User).where(User.handle == disabled).values(disabled=True))
            await db.commit()
        browser = await app.browser()
        unknown = await browser.login(unique("nobody"), "whatever-password")
        wrong = await browser.login(handle, "whatever-password")
        refused = await browser.login(disabled, STRONG_PASSWORD)
        failures = await app.audit("login.failure")

    pages = [unknown, wrong, refused]
    assert [page.status_code for page in pages] == [400, 400, 400]
    assert [form_error(page.text) for page in pages] == [WRONG] * 3
    assert all(SESSION_COOKIE not in page.headers.get("set-cookie", "") for page in pages)
    # Only the audit log (admins) tells the cases apart.
    assert [event.detail["reason"] for event in failures] == [
        "unknown_handle",
        "bad_password",
        "disabled",
    ]
    assert [event.actor for event in failures] == ["anonymous", handle, disabled]


async def _fail(app: Portal, handle: str, times: int) -> list[int]:
    browser = await app.browser()
    return [(await browser.login(handle, "not-the-password")).status_code for _ in range(times)]


async def test_repeated_failures_lock_the_account_with_back_off(
    portal_settings: PortalSettings,
) -> None:
    limit = DEFAULT_POLICY.lockout_after
    async with portal(portal_settings) as app:
        _, handle = await app.signed_up("carl")
        statuses = await _fail(app, handle, limit)
        browser = await app.browser()  # another address: the lock is on the account
        locked = await browser.login(handle)
        # Time passes: the first lock runs out (its counter is dropped, as its expiry would).
        await app.app.state.rate_limiter.reset(f"login:lock:{handle}")
        second_round = await _fail(app, handle, limit)
        locked_again = await browser.login(handle)
        locks = await app.audit("login.locked")

    assert statuses == [400] * (limit - 1) + [429]
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= lock_seconds(1)
    assert "locked for" in form_error(locked.text)
    assert SESSION_COOKIE not in locked.headers.get("set-cookie", "")  # even the right password
    assert second_round == [400] * (limit - 1) + [429]
    assert lock_seconds(1) < int(locked_again.headers["retry-after"]) <= lock_seconds(2)
    assert [event.detail["seconds"] for event in locks] == [lock_seconds(1), lock_seconds(2)]


def test_lock_lengths_double_up_to_fifteen_minutes() -> None:
    assert [lock_seconds(level) for level in range(1, 8)] == [30, 60, 120, 240, 480, 900, 900]


async def test_unknown_handles_lock_exactly_like_real_ones(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        statuses = await _fail(app, unique("ghost"), DEFAULT_POLICY.lockout_after)
    assert statuses[-1] == 429


async def test_a_successful_login_clears_the_failure_count(portal_settings: PortalSettings) -> None:
    limit = DEFAULT_POLICY.lockout_after
    async with portal(portal_settings) as app:
        _, handle = await app.signed_up("dina")
        first = await _fail(app, handle, limit - 1)
        success = await (await app.browser()).login(handle)
        later = await _fail(app, handle, limit - 1)
    assert first == later == [400] * (limit - 1)
    assert success.status_code == 303


async def test_login_is_rate_limited_per_address(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        app.app.state.throttle_policy = ThrottlePolicy(login_per_ip=Budget(3, 60))
        browser = await app.browser()
        statuses = [
            (await browser.login(unique("u"), "pw-123456789")).status_code for _ in range(3)
        ]
        refused = await browser.login(unique("u"), "pw-123456789")
        elsewhere = await (await app.browser()).login(unique("u"), "pw-123456789")

    assert statuses == [400, 400, 400]
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert "Too many log-in attempts from your network" in form_error(refused.text)
    assert elsewhere.status_code == 400


async def test_login_is_rate_limited_per_account(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        app.app.state.throttle_policy = ThrottlePolicy(login_per_account=Budget(2, 60))
        _, handle = await app.signed_up("erik")
        first = await (await app.browser()).login(handle)
        second = await (await app.browser()).login(handle)
        third = await (await app.browser()).login(handle)
    assert [first.status_code, second.status_code] == [303, 303]
    assert third.status_code == 429
    assert "retry-after" in third.headers


async def test_login_without_csrf_token_is_refused(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        _, handle = await app.signed_up("fay")
        browser = await app.browser()
        await browser.get("/login")
        missing = await browser.post(
            "/login", {"handle": handle, "password": STRONG_PASSWORD}, csrf=False
        )
        forged = await browser.post(
            "/login",
            {"handle": handle, "password": STRONG_PASSWORD, "csrf_token": "x" * 43},
            csrf=False,
        )
        cross_site = await browser.client.post(
            "/login",
            data={
                "handle": handle,
                "password": STRONG_PASSWORD,
                "csrf_token": await browser.csrf(),
            },
            headers={"origin": "https://evil.example"},
        )

    for response in (missing, forged, cross_site):
        assert response.status_code == 403
        assert response.headers["content-type"].startswith("text/html")
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    assert "did not come from this site" in missing.text


async def test_logout_ends_the_session_its_tokens_and_the_clients_sessions(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("gus")
        other, _ = await app.signed_up("hal")
        user = await app.user(handle)
        async with app.db() as db:
            sid = await db.scalar(select(WebSession.sid).where(WebSession.user_id == user.id))
            now = datetime.now(UTC)
            db.add_all(
                [
                    OAuthClient(
                        client_id="zz-mail",
                        name="Mail",
                        redirect_uris=[],
                        grant_types=[],
                        scopes=[],
                        audiences=[],
                        frontchannel_logout_uri="https://mail.example/logout?x=1",
                        enabled=True,
                        updated_at=now,
                    ),
                    OAuthClient(
                        client_id="zz-off",
                        name="Retired",
                        redirect_uris=[],
                        grant_types=[],
                        scopes=[],
                        audiences=[],
                        frontchannel_logout_uri="https://retired.example/logout",
                        enabled=False,
                        updated_at=now,
                    ),
                ]
            )
            await db.flush()
            for index, token_sid in enumerate([sid, "another-session"]):
                db.add(
                    RefreshToken(
                        token_hash=f"hash-{index}",
                        family_id=f"family-{index}",
                        client_id="zz-mail",
                        user_id=user.id,
                        sid=token_sid,
                        scope="openid",
                        created_at=now,
                        expires_at=now + timedelta(days=1),
                    )
                )
            await db.commit()

        confirm = await browser.get("/logout")
        no_csrf = await browser.post("/logout", csrf=False)
        still_in = await browser.get("/account")
        response = await browser.logout()
        after = await browser.get("/account")
        bystander = await other.get("/account")
        async with app.db() as db:
            rows = await db.execute(select(RefreshToken.sid, RefreshToken.revoked_at))
            revoked = {row.sid: row.revoked_at for row in rows.all()}
            ended = await db.scalar(select(WebSession.revoked_at).where(WebSession.sid == sid))
        events = await app.audit("logout")

    assert confirm.status_code == 200 and 'action="http://testserver/logout"' in confirm.text
    assert no_csrf.status_code == 403
    assert still_in.status_code == 200
    assert response.status_code == 200
    assert "Signing you out" in response.text
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert (
        f'src="https://mail.example/logout?x=1&amp;iss=http%3A%2F%2Fportal.test&amp;sid={sid}"'
        in response.text
    )
    assert "retired.example" not in response.text
    assert "<noscript>" in response.text
    assert after.status_code == 303
    assert bystander.status_code == 200
    assert ended is not None
    assert revoked[sid] is not None
    assert revoked["another-session"] is None
    assert [event.actor for event in events] == [handle]


async def test_second_login_replaces_this_browsers_session(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("ivy")
        first_cookie = browser.signed_in_cookie
        await browser.login(handle)
        user = await app.user(handle)
        async with app.db() as db:
            live = list(
                await db.scalars(
                    select(WebSession.id).where(
                        WebSession.user_id == user.id, WebSession.revoked_at.is_(None)
                    )
                )
            )
    assert browser.signed_in_cookie != first_cookie
    assert len(live) == 1
