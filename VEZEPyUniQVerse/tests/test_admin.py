from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.cli import grant_admin, main
from VEZEPyUniQVerse.db.models import OAuthClient, RefreshToken, User
from VEZEPyUniQVerse.services.accounts.passwords import DUMMY_HASH
from VEZEPyUniQVerse.tests.accounts_helpers import Browser, Portal, form_error, portal, unique


async def _admin(app: Portal) -> tuple[Browser, str]:
    browser, handle = await app.signed_up("root-of-trust")
    await app.make_admin(handle)
    return browser, handle


async def test_non_admins_get_a_403_page_and_strangers_the_login(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        user, _ = await app.signed_up("pleb")
        _, victim = await app.signed_up("victim")
        anonymous = await app.browser()
        pages = [
            await user.get(path) for path in ("/admin", "/admin/audit", f"/admin/users/{victim}")
        ]
        action = await user.post(f"/admin/users/{victim}/disable")
        stranger = await anonymous.get("/admin/audit", actor="x")
        account = await user.get("/account")
        disabled = (await app.user(victim)).disabled

    for page in [*pages, action]:
        assert page.status_code == 403
        assert page.headers["content-type"].startswith("text/html")
        assert "This page is for administrators of the portal." in page.text
    assert (stranger.status_code, stranger.headers["location"]) == (
        303,
        "/login?next=%2Fadmin%2Faudit%3Factor%3Dx",
    )
    assert 'href="http://testserver/admin"' not in account.text  # no Admin link for users
    assert not disabled


async def test_admins_find_users_by_handle_prefix_page_by_page(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        admin, _ = await _admin(app)
        prefix = unique("team")
        async with app.db() as db:
            now = datetime.now(UTC)
            db.add_all(
                User(
                    handle=f"{prefix}{number:02d}",
                    display_name="",
                    password_hash=DUMMY_HASH,
                    roles=["user"],
                    created_at=now,
                    updated_at=now,
                    password_changed_at=now,
                )
                for number in range(27)
            )
            await db.commit()
        first = await admin.get("/admin", q=prefix.upper())
        second = await admin.get("/admin", q=prefix, page=2)
        nothing = await admin.get("/admin", q="zzz-nobody")

    handles = re.findall(rf">({prefix}\d\d)</a>", first.text)
    assert handles == [f"{prefix}{number:02d}" for number in range(25)]
    assert "27 accounts" in first.text and "Page 1 of 2" in first.text
    assert re.findall(rf">({prefix}\d\d)</a>", second.text) == [f"{prefix}25", f"{prefix}26"]
    assert "No accounts found." in nothing.text


async def test_disabling_signs_the_user_out_everywhere_and_enabling_lets_them_back(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        admin, admin_handle = await _admin(app)
        victim_browser, victim = await app.signed_up("mallory")
        user = await app.user(victim)
        async with app.db() as db:
            now = datetime.now(UTC)
            db.add(
                OAuthClient(
                    client_id="zz-game",
                    name="Game",
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
                    token_hash="victim-token",
                    family_id="f",
                    client_id="zz-game",
                    user_id=user.id,
                    sid=None,
                    scope="openid",
                    created_at=now,
                    expires_at=now + timedelta(days=1),
                )
            )
            await db.commit()

        no_csrf = await admin.post(f"/admin/users/{victim}/disable", csrf=False)
        disabled = await admin.post(f"/admin/users/{victim}/disable")
        page = await admin.get(disabled.headers["location"])
        kicked_out = await victim_browser.get("/account")
        login_refused = await (await app.browser()).login(victim)
        async with app.db() as db:
            token_revoked = await db.scalar(select(RefreshToken.revoked_at))
        enabled = await admin.post(f"/admin/users/{victim}/enable")
        login_again = await (await app.browser()).login(victim)
        self_disable = await admin.post(f"/admin/users/{admin_handle}/disable")
        missing = await admin.post("/admin/users/nobody-at-all/disable")
        events = [(e.action, e.actor, e.target) for e in await app.audit() if "admin." in e.action]

    assert no_csrf.status_code == 403
    assert disabled.status_code == 303
    assert "The account is disabled" in page.text
    assert kicked_out.status_code == 303
    assert login_refused.status_code == 400
    assert form_error(login_refused.text) == "Wrong handle or password."
    assert token_revoked is not None
    assert enabled.status_code == 303
    assert login_again.status_code == 303
    assert self_disable.status_code == 400
    assert form_error(self_disable.text) == "You cannot disable your own account."
    assert missing.status_code == 404
    assert events == [
        ("admin.disable", admin_handle, victim),
        ("admin.enable", admin_handle, victim),
    ]


async def test_admins_grant_and_revoke_roles(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        admin, admin_handle = await _admin(app)
        helper_browser, helper = await app.signed_up("helper")
        before = await helper_browser.get("/admin")
        granted = await admin.post(f"/admin/users/{helper}/roles", {"role": "admin", "grant": "1"})
        after = await helper_browser.get("/admin")
        twice = await admin.post(f"/admin/users/{helper}/roles", {"role": "admin", "grant": "1"})
        unknown = await admin.post(f"/admin/users/{helper}/roles", {"role": "god", "grant": "1"})
        revoked = await admin.post(f"/admin/users/{helper}/roles", {"role": "admin", "grant": "0"})
        after_revoke = await helper_browser.get("/admin")
        self_revoke = await admin.post(
            f"/admin/users/{admin_handle}/roles", {"role": "admin", "grant": "0"}
        )
        roles = (await app.user(helper)).roles
        events = [(e.action, e.detail.get("role")) for e in await app.audit() if "role" in e.action]

    assert before.status_code == 403
    assert granted.status_code == 303
    assert after.status_code == 200
    assert twice.headers["location"].endswith("notice=unchanged")
    assert unknown.status_code == 400
    assert "Unknown role 'god'" in form_error(unknown.text)
    assert revoked.status_code == 303
    assert after_revoke.status_code == 403
    assert self_revoke.status_code == 400
    assert roles == ["user"]
    assert events == [("admin.role_granted", "admin"), ("admin.role_revoked", "admin")]


async def test_the_audit_log_filters_newest_first(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        admin, admin_handle = await _admin(app)
        _, someone = await app.signed_up("sam")
        stranger = await app.browser()
        await stranger.login(someone, "wrong-password-1")
        await stranger.login("nobody-" + someone, "wrong-password-2")
        everything = await admin.get("/admin/audit")
        failures = await admin.get("/admin/audit", action="login.failure")
        by_actor = await admin.get("/admin/audit", actor=someone.upper())
        with_markup = await admin.get("/admin/audit", actor="<b>x</b>")

    rows = re.findall(r"<td><code>([a-z_.]+)</code></td>", everything.text)
    assert rows[:2] == ["login.failure", "login.failure"]  # newest first
    assert rows[-1] == "account.signup"
    assert stranger.ip in everything.text
    assert re.findall(r"<td><code>([a-z_.]+)</code></td>", failures.text) == ["login.failure"] * 2
    assert "2 events" in failures.text
    assert set(re.findall(r"<td><code>([a-z_.]+)</code></td>", by_actor.text)) == {
        "account.signup",
        "login.failure",
    }
    assert "&lt;b&gt;x&lt;/b&gt;" in with_markup.text and "<b>x</b>" not in with_markup.text
    assert admin_handle


async def test_cli_grants_the_admin_role(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        _, handle = await app.signed_up("first")
    first = await grant_admin(portal_settings, handle.upper())
    second = await grant_admin(portal_settings, handle)
    with pytest.raises(LookupError, match="sign up first"):
        await grant_admin(portal_settings, "nobody-here")
    async with portal(portal_settings) as app:
        roles = (await app.user(handle)).roles
        events = [(e.actor, e.action, e.target) for e in await app.audit("admin.role_granted")]

    assert first == f"{handle} is now an admin"
    assert second == f"{handle} is already an admin"
    assert roles == ["user", "admin"]
    assert events == [("cli", "admin.role_granted", handle)]


def test_cli_reports_an_unknown_handle(
    portal_settings: PortalSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("UNI_DB_URL", portal_settings.db_url)
    assert main(["grant-admin", "nobody-here"]) == 1
    assert "no account with the handle 'nobody-here'" in capsys.readouterr().err
