from __future__ import annotations

from sqlalchemy import func, select

from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import User
from VEZEPyUniQVerse.services.accounts.passwords import verify_password
from VEZEPyUniQVerse.services.accounts.policy import password_problem
from VEZEPyUniQVerse.services.accounts.throttle import DEFAULT_POLICY
from VEZEPyUniQVerse.services.provisioning.queue import provisioning_status
from VEZEPyUniQVerse.tests.accounts_helpers import (
    SESSION_COOKIE,
    STRONG_PASSWORD,
    form_error,
    portal,
    unique,
)
from VEZEPyUniQVerse.tests.helpers import with_changes


async def test_signup_creates_the_account_signs_in_and_queues_provisioning(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        browser = await app.browser()
        handle = unique("Alice")
        form = await browser.get("/signup")
        response = await browser.signup(handle, display_name="  Alice   Liddell ")
        account = await browser.get("/account")
        user = await app.user(handle)
        events = await app.audit("account.signup")
        async with app.db() as db:
            tasks = await provisioning_status(db, handle=handle.lower())

    assert form.status_code == 200
    assert 'name="csrf_token"' in form.text
    assert (response.status_code, response.headers["location"]) == (303, "/home")
    cookie = response.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert user.handle == handle.lower()  # stored lower-case
    assert user.display_name == "Alice Liddell"
    assert user.roles == ["user"]
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, STRONG_PASSWORD)
    assert account.status_code == 200
    assert f"{handle.lower()}@vezeuniqverse.com" in account.text
    assert "Your mailbox and player profile" in account.text  # provisioning, as it stands
    assert "<strong>Mailbox</strong>" in account.text
    assert [(e.actor, e.target, e.ip) for e in events] == [
        (handle.lower(), handle.lower(), browser.ip)
    ]
    assert sorted(task.target for task in tasks) == ["email", "game"]


async def test_signup_grants_admin_to_configured_handles(portal_settings: PortalSettings) -> None:
    boss = unique("boss")
    settings = with_changes(portal_settings, admin_handles=frozenset({boss}))
    async with portal(settings) as app:
        browser = await app.browser()
        await browser.signup(boss.upper())
        _plain, plain_handle = await app.signed_up("plain")
        admin_roles = (await app.user(boss)).roles
        plain_roles = (await app.user(plain_handle)).roles
        admin_page = await browser.get("/account")

    assert admin_roles == ["user", "admin"]
    assert plain_roles == ["user"]
    assert 'href="http://testserver/admin"' in admin_page.text


BAD_HANDLES = [
    ("ab", "Handle must be 3-32 characters long."),
    ("a" * 33, "Handle must be 3-32 characters long."),
    ("bad handle", "Handle may contain only letters, digits, dot, hyphen and underscore."),
    ("9lives", "Handle must start with a letter."),
    ("Postmaster", "Handle 'postmaster' is reserved."),
    ("abuse", "Handle 'abuse' is reserved."),
    ("noreply", "Handle 'noreply' is reserved."),
    ("ROOT", "Handle 'root' is reserved."),
]

WEAK_PASSWORDS = [
    ("short1!", None, "Use at least 10 characters."),
    ("x" * 257, None, "Use at most 256 characters."),
    ("Password2024!", None, "one of the most common passwords"),
    ("qwertyuiop", None, "one of the most common passwords"),
    ("{handle}-rocks-99", None, "must not contain your handle"),
    ("abababababab", None, "Use more variety"),
    ("abcdefghijkl", None, "Use more variety"),
    ("violet-harbour-engine-42", "violet-harbour-engine-43", "The two passwords differ"),
]


async def test_signup_refuses_bad_and_reserved_handles(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        for handle, reason in BAD_HANDLES:
            response = await (await app.browser()).signup(handle)
            assert response.status_code == 400, handle
            assert form_error(response.text) == reason, handle
            assert f'value="{handle}"' in response.text  # the form keeps what was typed
            assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
        async with app.db() as db:
            assert await db.scalar(select(func.count()).select_from(User)) == 0


async def test_signup_refuses_weak_passwords_with_a_clear_reason(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        for password, confirm, reason in WEAK_PASSWORDS:
            handle = unique("carol")
            typed = password.format(handle=handle.upper())
            response = await (await app.browser()).signup(handle, typed, confirm=confirm)
            assert response.status_code == 400, password
            assert reason in form_error(response.text), password
            assert typed not in response.text  # passwords are never echoed back
        async with app.db() as db:
            assert await db.scalar(select(func.count()).select_from(User)) == 0


def test_password_rule_accepts_long_varied_passwords() -> None:
    assert password_problem("purple otter juggles quietly", handle="alice") is None
    assert password_problem("correct horse battery staple", handle="alice") is not None
    assert password_problem("Tr0ub4dor&3xyz", handle="alice") is None
    assert password_problem("x" * 9, handle="alice") is not None


async def test_handles_are_unique_whatever_their_case(portal_settings: PortalSettings) -> None:
    handle = unique("dave")
    async with portal(portal_settings) as app:
        first = await (await app.browser()).signup(handle)
        second = await (await app.browser()).signup(handle.upper())
        async with app.db() as db:
            users = await db.scalar(select(func.count()).select_from(User))

    assert first.status_code == 303
    assert second.status_code == 409
    assert form_error(second.text) == f"The handle '{handle}' is taken; choose another."
    assert users == 1


NEXT_PATHS = [
    ("/oauth/authorize?client_id=webmail&state=x", "/oauth/authorize?client_id=webmail&state=x"),
    ("https://evil.example/", "/home"),
    ("//evil.example/", "/home"),
    ("/\\evil.example", "/home"),
    ("/ /evil.example", "/home"),
    ("javascript:alert(1)", "/home"),
]


async def test_signup_goes_on_to_next_only_on_this_site(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        for next_path, location in NEXT_PATHS:
            response = await (await app.browser()).signup(unique("erin"), next_path=next_path)
            assert response.headers["location"] == location, next_path


async def test_signup_without_csrf_token_is_refused(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        browser = await app.browser()
        await browser.get("/signup")
        handle = unique("mallory")
        response = await browser.post(
            "/signup",
            {"handle": handle, "password": STRONG_PASSWORD, "confirm": STRONG_PASSWORD},
            csrf=False,
        )
        async with app.db() as db:
            users = await db.scalar(select(func.count()).select_from(User))

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "did not come from this site" in response.text
    assert 'href="/signup">Back to the form' in response.text
    assert users == 0


async def test_signup_is_rate_limited_per_address(portal_settings: PortalSettings) -> None:
    async with portal(portal_settings) as app:
        budget = DEFAULT_POLICY.signup_per_ip
        browser = await app.browser()
        statuses = [(await browser.signup("ab")).status_code for _ in range(budget.limit)]
        refused = await browser.signup(unique("frank"))
        elsewhere = await (await app.browser()).signup(unique("grace"))

    assert set(statuses) == {400}
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= budget.window_seconds
    assert "Too many sign-ups from your network" in form_error(refused.text)
    assert elsewhere.status_code == 303
