from __future__ import annotations

import re
import time

import pyotp
from sqlalchemy import select

from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import RecoveryCode, WebSession
from VEZEPyUniQVerse.services.accounts.throttle import DEFAULT_POLICY
from VEZEPyUniQVerse.services.accounts.totp import matching_step
from VEZEPyUniQVerse.tests.accounts_helpers import Browser, Portal, form_error, portal


async def enrol(app: Portal, browser: Browser) -> tuple[pyotp.TOTP, list[str], str]:
    """Turn TOTP on through the pages; returns the TOTP, the recovery codes, the QR page."""
    started = await browser.post("/account/totp/enrol")
    assert started.headers["location"] == "/account/totp"
    page = await browser.get("/account/totp")
    match = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page.text)
    assert match is not None
    totp = pyotp.TOTP(match.group(1).replace(" ", ""))
    wrong = await browser.post("/account/totp/confirm", {"code": "000000"})
    assert wrong.status_code == 400
    assert "does not match" in form_error(wrong.text)
    confirmed = await browser.post("/account/totp/confirm", {"code": totp.now()})
    assert confirmed.status_code == 200, confirmed.text
    codes = re.findall(r"<li>([a-z2-9]{5}-[a-z2-9]{5})</li>", confirmed.text)
    return totp, codes, page.text


async def test_totp_enrolment_shows_a_qr_code_and_ten_recovery_codes_once(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("tina")
        _, codes, page = await enrol(app, browser)
        user = await app.user(handle)
        account = await browser.get("/account")
        async with app.db() as db:
            stored = list(
                await db.scalars(
                    select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)
                )
            )
        events = await app.audit("totp.enabled")

    assert "<svg" in page and "<path" in page  # the QR code, inline
    assert "<script" not in page.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert user.totp_enabled
    assert len(codes) == len(set(codes)) == 10
    assert len(stored) == 10 and all(h.startswith("$argon2id$") for h in stored)
    assert not any(code in account.text for code in codes)  # shown once, never again
    assert "10 unused recovery codes left" in account.text
    assert [event.actor for event in events] == [handle]


async def test_login_with_totp_needs_the_code_and_refuses_a_replayed_one(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("uma")
        totp, _, _ = await enrol(app, browser)
        last_step = (await app.user(handle)).totp_last_step
        assert last_step is not None
        used_code = totp.generate_otp(last_step)  # the code that confirmed the set-up
        await browser.logout()

        password_ok = await browser.login(handle, next_path="/account#sessions")
        half_way = await browser.get("/account")
        back_to_code = await browser.get("/login", next="/account")
        totp_form = await browser.get(password_ok.headers["location"])
        replayed = await browser.post(
            "/login/totp", {"code": used_code, "next": "/account#sessions"}
        )
        next_code = totp.at(time.time() + 30)
        accepted = await browser.post("/login/totp", {"code": next_code, "next": "/account"})
        inside = await browser.get("/account")
        await browser.logout()
        await browser.login(handle)
        reused = await browser.post("/login/totp", {"code": next_code})
        events = [event.action for event in await app.audit()]

    assert password_ok.headers["location"] == "/login/totp?next=%2Faccount%23sessions"
    assert half_way.status_code == 303  # a half-done log-in is nobody
    assert half_way.headers["location"].startswith("/login")
    assert back_to_code.headers["location"] == "/login/totp?next=%2Faccount"
    assert totp_form.status_code == 200 and 'name="code"' in totp_form.text
    assert replayed.status_code == 400
    assert "already used" in form_error(replayed.text)
    assert (accepted.status_code, accepted.headers["location"]) == (303, "/account")
    assert inside.status_code == 200
    assert reused.status_code == 400  # that step was used: refused on the next log-in too
    assert "login.password_ok" in events
    assert events.count("login.success") == 1


async def test_recovery_codes_log_in_once_each(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("vera")
        _, codes, _ = await enrol(app, browser)
        await browser.logout()
        await browser.login(handle)
        first = await browser.post("/login/totp", {"code": codes[3].upper()})
        account = await browser.get("/account")
        await browser.logout()
        await browser.login(handle)
        again = await browser.post("/login/totp", {"code": codes[3]})
        other = await browser.post("/login/totp", {"code": codes[4].replace("-", "")})
        used = await app.audit("recovery_code.used")

    assert first.status_code == 303
    assert "9 unused recovery codes left" in account.text
    assert again.status_code == 400
    assert other.status_code == 303
    assert [event.detail["remaining"] for event in used] == [9, 8]


async def test_second_factor_attempts_are_limited(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("wes")
        await enrol(app, browser)
        await browser.logout()
        await browser.login(handle)
        limit = DEFAULT_POLICY.second_factor_per_account.limit
        statuses = [
            (await browser.post("/login/totp", {"code": "123456"})).status_code
            for _ in range(limit - 2)  # enrolment's two confirmations counted too
        ]
        refused = await browser.post("/login/totp", {"code": "123456"})
    assert set(statuses) == {400}
    assert refused.status_code == 429
    assert "retry-after" in refused.headers


async def test_disabling_totp_needs_the_password(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("xena")
        await enrol(app, browser)
        wrong = await browser.post("/account/totp/disable", {"password": "not-my-password"})
        still_on = (await app.user(handle)).totp_enabled
        right = await browser.post(
            "/account/totp/disable", {"password": "violet-harbour-engine-42"}
        )
        user = await app.user(handle)
        await browser.logout()
        login = await browser.login(handle)
        events = [event.action for event in await app.audit()]

    assert wrong.status_code == 400
    assert form_error(wrong.text) == "The password is wrong."
    assert still_on
    assert right.status_code == 303
    assert (user.totp_enabled, user.totp_secret) == (False, None)
    assert login.headers["location"] == "/home"  # no second step any more
    assert "reauth.failure" in events and "totp.disabled" in events


async def test_a_half_done_login_expires(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("yuri")
        totp, _, _ = await enrol(app, browser)
        await browser.logout()
        await browser.login(handle)
        user = await app.user(handle)
        async with app.db() as db:
            web_session = await db.scalar(
                select(WebSession).where(
                    WebSession.user_id == user.id, WebSession.revoked_at.is_(None)
                )
            )
            assert web_session is not None and not web_session.second_factor_done
            web_session.created_at = web_session.created_at.replace(year=2000)
            await db.commit()
        late = await browser.post("/login/totp", {"code": totp.at(time.time() + 30)})
    assert late.status_code == 400
    assert "took too long" in form_error(late.text)


def test_codes_match_their_step_within_one_step_of_drift() -> None:
    secret = pyotp.random_base32()
    totp = pyotp.TOTP(secret)
    now = 1_800_000_000.0
    step = totp.timecode(now)
    assert matching_step(secret, totp.at(now), last_step=None, now=now) == step
    assert matching_step(secret, totp.at(now - 30), last_step=None, now=now) == step - 1
    assert matching_step(secret, totp.at(now + 30), last_step=None, now=now) == step + 1
    assert matching_step(secret, totp.at(now + 60), last_step=None, now=now) is None
    assert matching_step(secret, totp.at(now), last_step=step, now=now) is None
    assert matching_step(secret, totp.at(now - 30), last_step=step, now=now) is None
    assert matching_step(secret, "12345", last_step=None, now=now) is None
