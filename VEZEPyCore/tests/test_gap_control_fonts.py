"""Form controls take the page font from veze.css alone; no service stylesheet repeats it.

Browsers give buttons, inputs, selects and textareas a smaller font of their own. veze.css
gives them the page's (`font: inherit`), so a service stylesheet that says it again is a
leftover workaround. The browser check (Debian's Chromium) shows the portal's forms and the
webmail, whose stylesheets no longer say it, still get the page font.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page

from VEZEPyCore.testing import free_port, serve_app
from VEZEPyCore.web.sso import SsoSession, session_cookie_name

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "VEZEPyCore" / "ui" / "static" / "veze.css"
INHERITED_FONT = re.compile(r"\bfont(-family)?\s*:\s*inherit\b")
HANDLE = "fontcheck"
DOMAIN = "vezeuniqverse.com"
ADDRESS = f"{HANDLE}@{DOMAIN}"

#: The body's font, and each visible control's, as computed by the browser.
FONTS = """() => {
  const body = getComputedStyle(document.body);
  const controls = [...document.querySelectorAll("button, input, select, textarea")]
    .filter(el => el.type !== "hidden" && el.getClientRects().length > 0);
  return {
    body: body.fontFamily,
    size: body.fontSize,
    controls: controls.map(el => ({
      name: el.id || el.name || el.className || el.textContent.trim(),
      family: getComputedStyle(el).fontFamily,
      size: getComputedStyle(el).fontSize,
    })),
  };
}"""


def test_only_veze_css_gives_controls_the_page_font() -> None:
    assert INHERITED_FONT.search(SHARED.read_text())
    sheets = [
        path
        for service in ("VEZEPyUniQVerse", "VEZEPyEmail", "VEZEPyGame")
        for path in (ROOT / service / "ui" / "static").rglob("*.css")
    ]
    assert {path.name for path in sheets} >= {"accounts.css", "webmail.css"}
    repeated = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sheets
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if INHERITED_FONT.search(line)
    ]
    assert repeated == [], "veze.css already gives controls the page font"


async def _fonts(page: Page) -> dict[str, Any]:
    fonts: dict[str, Any] = await page.evaluate(FONTS)
    assert fonts["controls"], "no controls on the page"
    for control in fonts["controls"]:
        assert control["family"] == fonts["body"], control
    return fonts


def _sized(fonts: dict[str, Any], names: set[str]) -> dict[str, str]:
    return {c["name"]: c["size"] for c in fonts["controls"] if c["name"] in names}


async def test_portal_forms_and_webmail_controls_take_the_page_font(
    portal_settings: Any, email_settings: Any, browser: Browser, mint: Callable[..., str]
) -> None:
    from VEZEPyEmail.app.main import create_app as create_email
    from VEZEPyEmail.services.mailboxes.service import ensure_mailbox
    from VEZEPyUniQVerse.app.main import create_app as create_portal

    ports = {name: free_port() for name in ("portal", "email")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    shared = {"service_urls": dict(urls), "public_urls": dict(urls)}
    portal = create_portal(portal_settings.model_copy(update=shared))
    email_config = email_settings.model_copy(update=shared)
    email = create_email(email_config)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serve_app(portal, port=ports["portal"]))
        await stack.enter_async_context(serve_app(email, port=ports["email"]))
        async with email.state.sessionmaker() as session:
            await ensure_mailbox(session, address=ADDRESS, display_name=HANDLE, domain=DOMAIN)
            await session.commit()
        context = await browser.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(20_000)
        await context.add_cookies([_email_session(email, email_config, mint, urls["email"])])
        page = await context.new_page()

        for path in ("/login", "/signup"):
            await page.goto(urls["portal"] + path)
            fonts = await _fonts(page)
            # accounts.css sizes no field: they are the page's size, as on the rest of the page.
            assert set(_sized(fonts, {"handle", "password"}).values()) == {fonts["size"]}

        await page.goto(urls["email"] + "/ui/inbox")
        await page.wait_for_selector("#mail-app")
        await page.click("#compose-button")
        await page.wait_for_selector(".composer:not([hidden])")
        fonts = await _fonts(page)
        sized = _sized(fonts, {"compose-text", "compose-button", "search-input"})
        assert len(sized) == 3 and set(sized.values()) == {fonts["size"]}, sized
        await context.close()


def _email_session(app: Any, settings: Any, mint: Callable[..., str], url: str) -> Any:
    """A signed-in browser's session cookie, as the email's `/auth/callback` would set it."""
    token = mint(
        f"sub-{HANDLE}",
        scopes=("openid", "email.read", "email.send"),
        ttl_seconds=900,
        preferred_username=HANDLE,
        email=ADDRESS,
    )
    session = SsoSession(
        access_token=token,
        refresh_token=None,
        expires_at=int(time.time()) + 900,
        sid=None,
        subject=f"sub-{HANDLE}",
        handle=HANDLE,
        email=ADDRESS,
    )
    value = str(app.state.sso.codec(settings).dump_session(session))
    return {"name": session_cookie_name("email"), "value": value, "url": url, "httpOnly": True}
