"""The home dashboard, assembled from real Email and Game with the person's own token."""

from __future__ import annotations

import re
from contextlib import AsyncExitStack

import httpx

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.tests.helpers import serve_stalled
from VEZEPyUniQVerse.tests.hub_support import platform, sign_up

WELCOME_SUBJECT = "Welcome to VEZE UniQVerse"


def panel(page: str, key: str) -> str:
    found = re.search(rf'<section[^>]*id="panel-{key}".*?</section>', page, re.S)
    assert found is not None, f"no {key} panel"
    return found.group(0)


async def test_dashboard_with_every_service_up(
    portal_settings: PortalSettings, email_settings: EmailSettings, game_settings: GameSettings
) -> None:
    async with (
        platform(portal_settings, email_settings, game_settings) as plat,
        AsyncExitStack() as stack,
    ):
        person = await sign_up(stack, plat, "hub")
        joined = await person.client.get("/home")
        landing_signed_in = await person.client.get("/")
        anonymous = await stack.enter_async_context(httpx.AsyncClient(base_url=plat.portal))
        redirected = await anonymous.get("/home")
        landing = await anonymous.get("/")

    assert redirected.status_code in (303, 307)
    # Visitors are offered sign-up and log-in that land on the dashboard; members go straight in.
    assert f'id="landing-signup" href="{plat.portal}/signup?next=/home"' in landing.text
    assert f'id="landing-login" href="{plat.portal}/login?next=/home"' in landing.text
    assert 'id="landing-signup"' not in landing_signed_in.text
    assert f'id="open-dashboard" href="{plat.portal}/home"' in landing_signed_in.text
    assert "/login" in redirected.headers["location"]
    assert joined.status_code == 200
    page = joined.text
    mail = panel(page, "mail")
    assert '<span class="badge" id="mail-unread">1</span>' in mail
    assert WELCOME_SUBJECT in mail
    rating = panel(page, "rating")
    assert "Ranked" in rating and "Casual" in rating
    assert "not ranked yet" in rating
    assert "You are not in a queue." in panel(page, "queue")
    assert "No matches yet." in panel(page, "matches")
    provisioning = panel(page, "provisioning")
    assert provisioning.count(">ready<") == 2
    assert "unavailable" not in page
    assert f"{plat.email}/ui/inbox" in mail  # links go to the services' public pages


async def test_dashboard_with_email_down_says_so_and_shows_the_rest(
    portal_settings: PortalSettings, email_settings: EmailSettings, game_settings: GameSettings
) -> None:
    async with (
        platform(portal_settings, email_settings, game_settings, email_up=False) as plat,
        AsyncExitStack() as stack,
    ):
        person = await sign_up(stack, plat, "down", wait_for=("game",))
        response = await person.client.get("/home")

    assert response.status_code == 200
    page = response.text
    mail = panel(page, "mail")
    assert "Mail is unavailable right now." in mail
    assert 'id="mail-unread"' not in mail
    rating = panel(page, "rating")
    assert "unavailable" not in rating and "Ranked" in rating
    assert "You are not in a queue." in panel(page, "queue")
    assert "No matches yet." in panel(page, "matches")
    assert badge(panel(page, "provisioning"), "Mailbox") != "ready"
    assert badge(panel(page, "provisioning"), "Player profile") == "ready"


async def test_a_slow_mail_service_times_out_its_panel_only(
    portal_settings: PortalSettings, email_settings: EmailSettings, game_settings: GameSettings
) -> None:
    # Short enough to see the mail panel give up; long enough that the game, answering on a
    # busy CI machine, is not cut off with it (0.5 s once was).
    quick = portal_settings.model_copy(update={"http_timeout_seconds": 2.0})
    async with (
        serve_stalled() as stalled,
        platform(quick, email_settings, game_settings, email_up=False, email_url=stalled) as plat,
        AsyncExitStack() as stack,
    ):
        person = await sign_up(stack, plat, "slow", wait_for=("game",))
        response = await person.client.get("/home")

    assert response.status_code == 200
    assert "Mail is unavailable right now." in panel(response.text, "mail")
    assert "Ranked" in panel(response.text, "rating")


def badge(section: str, label: str) -> str:
    found = re.search(rf'{label}:\s*<span class="badge">([^<]*)</span>', section)
    assert found is not None, f"no {label} badge"
    return found.group(1)
