from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import AppPassword, OAuthClient, RefreshToken, User, WebSession
from VEZEPyUniQVerse.services.accounts.service import verify_app_password
from VEZEPyUniQVerse.tests.accounts_helpers import (
    STRONG_PASSWORD,
    Browser,
    form_error,
    portal,
)

NEW_PASSWORD = "maple-lantern-orbit-77"


async def test_account_page_needs_a_login_and_escapes_what_people_typed(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        anonymous = await app.browser()
        refused = await anonymous.get("/account")
        browser, handle = await app.signed_up("anna", display_name="<script>alert(1)</script>")
        page = await browser.get("/account")

    assert (refused.status_code, refused.headers["location"]) == (303, "/login?next=%2Faccount")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert f"{handle}@vezeuniqverse.com" in page.text
    assert ">Log out</button>" in page.text


async def test_display_name_changes_and_bad_ones_are_explained(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("ben")
        saved = await browser.post("/account/profile", {"display_name": "  Ben   Gunn "})
        page = await browser.get(saved.headers["location"])
        too_long = await browser.post("/account/profile", {"display_name": "x" * 201})
        no_csrf = await browser.post("/account/profile", {"display_name": "Evil"}, csrf=False)
        user = await app.user(handle)

    assert saved.status_code == 303
    assert "Your display name is saved." in page.text
    assert too_long.status_code == 400
    assert form_error(too_long.text) == "The display name may be at most 200 characters."
    assert no_csrf.status_code == 403
    assert 'href="/account">Back to the form' in no_csrf.text
    assert user.display_name == "Ben Gunn"


async def _sessions_of(browser: Browser) -> list[str]:
    page = await browser.get("/account")
    return re.findall(r'<tr data-sid="([0-9a-f]+)">', page.text)


async def test_changing_the_password_signs_out_every_other_session(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("cleo")
        laptop = await app.browser()
        await laptop.login(handle)
        laptop_sid = (await _sessions_of(laptop))[0]
        user = await app.user(handle)
        async with app.db() as db:
            now = datetime.now(UTC)
            db.add(
                OAuthClient(
                    client_id="zz-cli",
                    name="CLI",
                    redirect_uris=[],
                    grant_types=[],
                    scopes=[],
                    audiences=[],
                    enabled=True,
                    updated_at=now,
                )
            )
            await db.flush()
            db.add(
                RefreshToken(
                    token_hash="laptop-token",
                    family_id="family",
                    client_id="zz-cli",
                    user_id=user.id,
                    sid=laptop_sid,
                    scope="openid",
                    created_at=now,
                    expires_at=now + timedelta(days=1),
                )
            )
            await db.commit()

        wrong = await browser.post(
            "/account/password",
            {"current": "not-it-at-all", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        )
        weak = await browser.post(
            "/account/password",
            {"current": STRONG_PASSWORD, "password": "password1", "confirm": "password1"},
        )
        changed = await browser.post(
            "/account/password",
            {"current": STRONG_PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
        )
        here = await browser.get(changed.headers["location"])
        there = await laptop.get("/account")
        old = await (await app.browser()).login(handle)
        new = await (await app.browser()).login(handle, NEW_PASSWORD)
        async with app.db() as db:
            token_revoked = await db.scalar(
                select(RefreshToken.revoked_at).where(RefreshToken.sid == laptop_sid)
            )
        events = await app.audit("password.changed")

    assert wrong.status_code == 400
    assert form_error(wrong.text) == "The current password is wrong."
    assert weak.status_code == 400
    assert changed.status_code == 303
    assert here.status_code == 200
    assert "Your password is changed." in here.text
    assert there.status_code == 303  # the laptop was signed out
    assert token_revoked is not None
    assert old.status_code == 400
    assert new.status_code == 303
    assert [event.detail["sessions_ended"] for event in events] == [1]


async def test_app_passwords_are_shown_once_verify_and_revoke(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("dora")
        intruder, _ = await app.signed_up("eve")
        empty_name = await browser.post("/account/app-passwords", {"name": "  "})
        created = await browser.post("/account/app-passwords", {"name": "Thunderbird <laptop>"})
        match = re.search(r'id="app-password">([a-z ]+)<', created.text)
        assert match is not None
        secret = match.group(1)
        page = await browser.get("/account")
        async with app.db() as db:
            row = await db.scalar(select(AppPassword))
            assert row is not None
            by_secret = await verify_app_password(db, handle=handle.upper(), password=secret)
            by_compact = await verify_app_password(
                db, handle=handle, password=secret.replace(" ", "")
            )
            by_account = await verify_app_password(db, handle=handle, password=STRONG_PASSWORD)
            by_wrong = await verify_app_password(db, handle=handle, password="abcd efgh ijkl mnop")
            by_nobody = await verify_app_password(db, handle="nobody-here", password=secret)
            await db.commit()
        used = await browser.get("/account")
        stolen = await intruder.post(f"/account/app-passwords/{row.id}/revoke")
        revoked = await browser.post(f"/account/app-passwords/{row.id}/revoke")
        async with app.db() as db:
            after = await verify_app_password(db, handle=handle, password=secret)
        events = [(event.action, event.actor) for event in await app.audit()]

    assert empty_name.status_code == 400
    assert "Give the app password a name" in form_error(empty_name.text)
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    assert re.fullmatch(r"[a-z]{4} [a-z]{4} [a-z]{4} [a-z]{4}", secret)
    assert secret not in page.text  # shown once
    assert "Thunderbird &lt;laptop&gt;" in page.text
    assert secret.replace(" ", "") not in row.password_hash and row.password_hash.startswith(
        "$argon2id$"
    )
    assert by_secret is not None and by_secret.handle == handle
    assert by_compact is not None
    assert by_account is not None  # no two-factor: the account password works too
    assert by_wrong is None and by_nobody is None
    assert "never" not in used.text.split('id="app-passwords"', 1)[1].split("</table>", 1)[0]
    assert stolen.status_code == 404
    assert "does not exist or was already revoked" in form_error(stolen.text)
    assert revoked.status_code == 303
    assert after is None
    assert ("app_password.created", handle) in events
    assert ("app_password.revoked", handle) in events


async def test_with_two_factor_only_app_passwords_open_the_account_for_mail_clients(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        _, handle = await app.signed_up("fred")
        async with app.db() as db:
            await db.execute(update(User).where(User.handle == handle).values(totp_enabled=True))
            await db.commit()
            assert await verify_app_password(db, handle=handle, password=STRONG_PASSWORD) is None


async def test_sessions_are_listed_and_only_your_own_can_be_revoked(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        browser, handle = await app.signed_up("gail")
        phone = await app.browser()
        await phone.login(handle)
        stranger, _ = await app.signed_up("hank")
        stranger_sid = (await _sessions_of(stranger))[0]
        listed = await _sessions_of(browser)
        phone_sid = (await _sessions_of(phone))[0]
        own = (set(listed) - {phone_sid}).pop()

        someone_elses = await browser.post(f"/account/sessions/{stranger_sid}/revoke")
        this_one = await browser.post(f"/account/sessions/{own}/revoke")
        revoked = await browser.post(f"/account/sessions/{phone_sid}/revoke")
        phone_after = await phone.get("/account")
        stranger_after = await stranger.get("/account")
        mine_after = await browser.get("/account")
        async with app.db() as db:
            live = list(
                await db.scalars(select(WebSession.sid).where(WebSession.revoked_at.is_(None)))
            )
        events = await app.audit("session.revoked")

    assert len(listed) == 2 and phone_sid in listed and stranger_sid not in listed
    assert someone_elses.status_code == 404
    assert "does not exist" in form_error(someone_elses.text)
    assert this_one.status_code == 400
    assert "use Log out" in form_error(this_one.text)
    assert revoked.status_code == 303
    assert phone_after.status_code == 303
    assert stranger_after.status_code == 200
    assert mine_after.status_code == 200
    assert stranger_sid in live and phone_sid not in live
    assert [event.detail["sid"] for event in events] == [phone_sid]
