"""The webmail in a real browser (Debian's Chromium driven by Playwright).

Portal and Email run on real ports with the SMTP listener on; people sign up at the portal
and reach the webmail by single sign-on; mail arrives over SMTP from a real smtplib client.
Screenshots go to `VEZE_SCREENSHOT_DIR` when it is set, else to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import smtplib
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.async_api import (
    Browser,
    BrowserContext,
    FilePayload,
    Page,
    Request,
    Route,
    expect,
)
from sqlalchemy import select, update

from VEZEPyCore.events import EVENTS_LOST
from VEZEPyCore.testing import free_port, serve_app
from VEZEPyEmail.app.main import create_app as create_email_app
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.db.models import Mailbox, Message
from VEZEPyEmail.services.delivery.local import deliver_local
from VEZEPyEmail.services.mailboxes.service import ensure_mailbox
from VEZEPyEmail.services.webmail import listing
from VEZEPyEmail.streaming.events import user_channel
from VEZEPyUniQVerse.app.main import create_app as create_portal_app
from VEZEPyUniQVerse.app.settings import PortalSettings

PASSWORD = "amber-falcon-meadow-58"
DOMAIN = "vezeuniqverse.com"
STEP_MS = 10_000
#: New mail must show up in an open list within a second; the wait allows for a slow CI box.
LIVE_MS = 5_000
TRACKER = "tracker.example"
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100ffff03000006000557bfabd40000000049454e44ae426082"
)

pytestmark = pytest.mark.timeout(180)

HOSTILE_HTML = f"""<html><head>
<meta http-equiv="refresh" content="0;url=https://{TRACKER}/refresh">
<link rel="stylesheet" href="https://{TRACKER}/sheet.css">
<style>body {{ background: url(https://{TRACKER}/style-bg.png) }} @import url(https://{TRACKER}/imp.css);</style>
<script>parent.document.title = "pwned-script"; fetch("https://{TRACKER}/script");</script>
</head><body onload="parent.document.title='pwned-onload'">
<p id="greeting" onclick="alert(1)">Hello from a hostile mail</p>
<img src="https://{TRACKER}/pixel.png" alt="tracking pixel" onerror="alert(2)">
<div style="background-image: url(https://{TRACKER}/inline-bg.png)">styled</div>
<svg onload="alert(3)"><image href="https://{TRACKER}/svg.png"/></svg>
<iframe src="https://{TRACKER}/frame"></iframe>
<object data="https://{TRACKER}/object"></object>
<form action="https://{TRACKER}/form"><input name="x"><button>go</button></form>
<a id="js-link" href="javascript:parent.document.title='pwned-link'">click me</a>
<a id="good-link" href="https://example.org/page">a fine link</a>
<base href="https://{TRACKER}/">
</body></html>"""


@dataclass(frozen=True)
class World:
    portal: str
    email: str
    mx_port: int
    app: FastAPI


@pytest.fixture
async def world(
    portal_settings: PortalSettings, email_settings: EmailSettings
) -> AsyncIterator[World]:
    ports = {name: free_port() for name in ("portal", "email")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    shared = {"service_urls": dict(urls), "public_urls": dict(urls), "jwt_iss": urls["portal"]}
    by_jwks = {**shared, "jwks_url": f"{urls['portal']}/.well-known/jwks.json"}
    smtp = {
        "smtp_enabled": True,
        "smtp_host": "127.0.0.1",
        "smtp_mx_port": 0,
        "smtp_submission_port": 0,
        "smtps_port": 0,
        # Small enough that the composer's "too big" check is quick to show.
        "upload_max_bytes": 200_000,
    }
    portal = create_portal_app(portal_settings.model_copy(update=shared))
    email = create_email_app(email_settings.model_copy(update={**by_jwks, **smtp}))
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(serve_app(portal, port=ports["portal"]))
        await stack.enter_async_context(serve_app(email, port=ports["email"]))
        yield World(urls["portal"], urls["email"], email.state.smtp.port("mx"), email)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    configured = os.environ.get("VEZE_SCREENSHOT_DIR")
    path = Path(configured) if configured else tmp_path / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


async def provision(app: FastAPI, handle: str) -> str:
    """The mailbox exists before the portal's queued provisioning gets to it (idempotent)."""
    address = f"{handle}@{DOMAIN}"
    async with app.state.sessionmaker() as session:
        await ensure_mailbox(session, address=address, display_name=handle, domain=DOMAIN)
        await session.commit()
    return address


async def smtp_deliver(port: int, message: EmailMessage) -> None:
    def send() -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(message)

    await asyncio.to_thread(send)


def mail(
    to: str, subject: str, body: str, *, sender: str = "Carol <carol@example.org>"
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{secrets.token_hex(8)}@example.org>"
    message.set_content(body)
    return message


async def signed_in(browser: Browser, world: World, handle: str) -> tuple[BrowserContext, Page]:
    """A browser context that signed up at the portal and opened the webmail."""
    context = await browser.new_context(viewport={"width": 1360, "height": 860})
    context.set_default_timeout(STEP_MS)
    page = await context.new_page()
    await page.goto(f"{world.portal}/signup")
    await page.fill("#handle", handle)
    await page.fill("#display_name", handle.title())
    await page.fill("#password", PASSWORD)
    await page.fill("#confirm", PASSWORD)
    await page.click("form[action$='/signup'] button[type=submit]")
    await page.wait_for_load_state()
    await page.goto(f"{world.email}/ui/inbox")
    await expect(page.locator("#mail-app")).to_be_visible()
    return context, page


async def test_read_hostile_mail_organise_search_and_keyboard(
    world: World, browser: Browser, shots: Path
) -> None:
    handle = "wm" + secrets.token_hex(3)
    address = await provision(world.app, handle)
    report = mail(address, "Quarterly report", "Numbers are up. See https://example.org/q3")
    report.add_attachment(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="q3.csv")
    await smtp_deliver(world.mx_port, report)
    hostile = mail(address, "You won a prize", "plain part", sender="Mallory <m@evil.example>")
    hostile.add_alternative(HOSTILE_HTML, subtype="html")
    await smtp_deliver(world.mx_port, hostile)
    for number in range(3):
        await smtp_deliver(world.mx_port, mail(address, f"Note {number}", f"note body {number}"))

    context, page = await signed_in(browser, world, handle)
    external: list[str] = []
    dialogs: list[str] = []

    async def record(route: Route, request: Request) -> None:
        external.append(request.url)
        await route.fulfill(status=200, body=PIXEL, content_type="image/png")

    await context.route(re.compile(rf"https?://{re.escape(TRACKER)}/.*"), record)
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    problems: list[str] = []
    page.on(
        "console",
        lambda message: problems.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: problems.append(str(error)))

    rows = page.locator("#message-list .msg-row")
    await expect(rows).to_have_count(6)  # five over SMTP and the welcome mail
    await expect(page.locator("#message-list .msg-row.unread")).to_have_count(6)
    await expect(page).to_have_title(re.compile(r"^\(6\) INBOX"))
    await expect(page.locator(".folder[data-folder='INBOX'] .count")).to_have_text("6")
    await page.screenshot(path=str(shots / "webmail-list-light.png"))

    # Reading a plain-text mail: text with a link, the attachment with type and size.
    await page.click("#message-list .msg-row:has-text('Quarterly report') .msg-open")
    await expect(page.locator("#reader-subject")).to_have_text("Quarterly report")
    await expect(page.locator("#mail-text")).to_contain_text("Numbers are up.")
    await expect(page.locator("#mail-text a")).to_have_attribute("href", "https://example.org/q3")
    attachment = page.locator(".attachments li")
    await expect(attachment).to_contain_text("q3.csv")
    await expect(attachment).to_contain_text("text/csv · 8 B")
    await expect(page.locator("#message-list .msg-row.unread")).to_have_count(5)
    await expect(page).to_have_title(re.compile(r"^\(5\) INBOX"))
    assert "m=" in page.url
    source = await page.request.get(await page.locator("#view-source").get_attribute("href") or "")
    assert "Subject: Quarterly report" in await source.text()
    assert source.headers["content-type"].startswith("text/plain")

    # The hostile mail: nothing runs and nothing loads until images are allowed.
    await page.click("#message-list .msg-row:has-text('You won a prize') .msg-open")
    frame_element = page.locator("#mail-frame")
    await expect(frame_element).to_have_attribute(
        "sandbox", "allow-popups allow-popups-to-escape-sandbox"
    )
    body = page.frame_locator("#mail-frame")
    await expect(body.locator("p").first).to_have_text("Hello from a hostile mail")
    await expect(page.locator("#images-blocked")).to_be_visible()
    await page.screenshot(path=str(shots / "webmail-hostile-blocked.png"))
    frame = page.frame(url=re.compile(r".*/frame$"))
    assert frame is not None
    markup = await frame.content()
    for bad in ("<script", "onload", "onerror", "onclick", "javascript:", "<iframe", "<object"):
        assert bad not in markup.lower(), bad
    assert TRACKER not in markup  # no remote reference left in the document at all
    await expect(body.locator("a", has_text="click me")).not_to_have_attribute(
        "href", re.compile("javascript")
    )
    await expect(body.locator("a", has_text="a fine link")).to_have_attribute("target", "_blank")
    # The frame's document cannot run script even if markup slipped through: its CSP says so.
    csp = await page.request.get(await frame_element.get_attribute("src") or "")
    policy = csp.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "img-src data:" in policy and "sandbox" in policy
    await page.wait_for_timeout(300)  # let anything that would load or run do so
    assert external == [] and dialogs == []
    assert not (await page.title()).startswith("pwned")

    # Allowing images for this message loads the pixel, and only the pixel.
    await page.click("#allow-images-message")
    await expect(page.locator("#images-blocked")).to_have_count(0)
    await expect(body.locator("img[alt='tracking pixel']")).to_have_attribute(
        "src", f"https://{TRACKER}/pixel.png"
    )
    await until(page, lambda: bool(external))
    assert external == [f"https://{TRACKER}/pixel.png"]
    assert dialogs == []

    # A missing message id is a 404; the image choice is a form that needs its CSRF token;
    # a script's fetch without a session gets 401 (a page navigation goes to sign in).
    other = await page.request.get(f"{world.email}/ui/mail/messages/999999")
    assert other.status == 404
    forged = await page.request.post(
        f"{world.email}/ui/mail/messages/{await _row_id(page, 'You won a prize')}/images",
        form={"scope": "sender"},
    )
    assert forged.status == 403
    # A link with a search that cannot run, or to a message that is not there, still opens
    # the page and says why.
    await page.goto(f"{world.email}/ui/mail?q=before:notadate")
    await expect(page.locator("#page-problem")).to_contain_text("expects a date")
    await page.goto(f"{world.email}/ui/mail?m=999999")
    await expect(page.locator("#page-problem")).to_contain_text("not in your mailbox")
    await expect(rows).to_have_count(6)
    stranger = await browser.new_context()
    anonymous = await stranger.request.get(
        f"{world.email}/ui/mail/list", headers={"Sec-Fetch-Dest": "empty"}, max_redirects=0
    )
    assert anonymous.status == 401
    await stranger.close()

    # Organise: select two notes (shift+click selects the range) and archive them; undo
    # brings them back.
    await page.check("#row-" + await _row_id(page, "Note 1") + " .msg-select")
    await page.click("#row-" + await _row_id(page, "Note 0") + " .msg-select", modifiers=["Shift"])
    await expect(page.locator("#message-list .msg-row.selected")).to_have_count(2)
    await page.click("[data-bulk='archive']")
    await expect(rows).to_have_count(4)
    await expect(page.locator("#toast")).to_contain_text("2 messages moved to Archive")
    await page.click("#toast button")
    await expect(rows).to_have_count(6)
    await page.check("#row-" + await _row_id(page, "Note 0") + " .msg-select")
    await page.select_option("#bulk-move", "Archive")
    await expect(rows).to_have_count(5)
    await expect(page.locator(".folder[data-folder='Archive']")).to_be_visible()
    await page.click("[data-folder-link='Archive']")
    await expect(page.locator("#list-heading")).to_have_text("Archive")
    await expect(rows).to_have_count(1)
    await page.click("[data-folder-link='INBOX']")
    await expect(rows).to_have_count(5)

    # Folders: create one and drag a message onto it.
    await page.fill("#new-folder-name", "Projects")
    await page.click("#new-folder-form button[type=submit]")
    projects = page.locator(".folder[data-folder='Projects']")
    await expect(projects).to_be_visible()
    await page.drag_and_drop(
        "#row-" + await _row_id(page, "Note 2"), ".folder[data-folder='Projects'] a"
    )
    await expect(rows).to_have_count(4)
    await expect(projects).to_contain_text("1")
    # Rename it (a prompt) and delete it (a confirmation): its message goes to Trash.
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept("Work")))
    await projects.hover()
    await page.click("[data-folder-rename='Projects']")
    work = page.locator(".folder[data-folder='Work']")
    await expect(work).to_contain_text("1")
    await expect(projects).to_have_count(0)
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await work.hover()
    await page.click("[data-folder-delete='Work']")
    await expect(work).to_have_count(0)
    await expect(page.locator(".folder[data-folder='Trash'] .count")).to_have_text("1")

    # Labels on the open message, shown in its row too; junk and back.
    await page.click("#message-list .msg-row:has-text('Note 1') .msg-open")
    await page.fill("#label-input", "urgent")
    await page.press("#label-input", "Enter")
    await expect(page.locator(".reader-labels .label")).to_contain_text("urgent")
    await expect(page.locator("#message-list .msg-row:has-text('Note 1') .badge")).to_have_text(
        "urgent"
    )
    await page.click("[data-label-remove='urgent']")
    await expect(page.locator(".reader-labels .label")).to_have_count(0)
    await page.click("#reader [data-action='junk']")
    await expect(rows).to_have_count(3)
    await page.click("[data-folder-link='Junk']")
    await page.click("#message-list .msg-row:has-text('Note 1') .msg-open")
    await page.click("#reader [data-action='notjunk']")
    await expect(rows).to_have_count(0)
    await page.click("[data-folder-link='INBOX']")
    await expect(rows).to_have_count(4)

    # Search with operators; matches are highlighted.
    await page.fill("#search-input", "report")
    await page.press("#search-input", "Enter")
    await expect(page.locator("#list-heading")).to_have_text("Search results")
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator("mark")).to_have_text("report")
    await page.screenshot(path=str(shots / "webmail-search.png"))
    await page.fill("#search-input", "in:all note")
    await page.press("#search-input", "Enter")
    await expect(rows).to_have_count(3)
    await expect(page.locator("#message-list mark").first).to_have_text(re.compile("note", re.I))
    await page.click("#clear-search")
    await expect(rows).to_have_count(4)

    # Keyboard: j/k move, o opens, s flags, e archives, # deletes, / searches, ? helps.
    await page.locator("body").click(position={"x": 5, "y": 300})
    await page.keyboard.press("j")
    await expect(rows.nth(0)).to_have_class(re.compile(r"\bcurrent\b"))
    await page.keyboard.press("j")
    await expect(rows.nth(1)).to_have_class(re.compile(r"\bcurrent\b"))
    await page.keyboard.press("k")
    await expect(rows.nth(0)).to_have_class(re.compile(r"\bcurrent\b"))
    first_subject = await rows.nth(0).locator(".msg-subject").inner_text()
    await page.keyboard.press("o")
    await expect(page.locator("#reader-subject")).to_have_text(first_subject)
    await page.keyboard.press("s")
    await expect(rows.nth(0)).to_have_class(re.compile(r"\bflagged\b"))
    await page.keyboard.press("e")
    await expect(rows).to_have_count(3)
    await page.keyboard.press("#")
    await expect(rows).to_have_count(2)
    await expect(page.locator("#toast")).to_contain_text("Message moved to Trash")
    await page.keyboard.press("/")
    await expect(page.locator("#search-input")).to_be_focused()
    await page.keyboard.press("Escape")
    await page.keyboard.press("?")
    await expect(page.locator("#help-dialog")).to_be_visible()
    await page.screenshot(path=str(shots / "webmail-help.png"))
    await page.keyboard.press("Escape")

    # No script error and no CSP violation (the page allows no inline code) all along.
    assert problems == []
    # Looks: dark theme, and the phone layout (one pane at a time).
    await page.click("[data-theme-choice='dark']")
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    await page.click("#message-list .msg-row:has-text('Quarterly report') .msg-open")
    await page.screenshot(path=str(shots / "webmail-reading-dark.png"))
    await page.set_viewport_size({"width": 390, "height": 800})
    await expect(page.locator("#mail-list-pane")).to_be_hidden()
    await page.screenshot(path=str(shots / "webmail-phone-message-dark.png"))
    await page.click("[data-action='back']")
    await expect(page.locator("#mail-list-pane")).to_be_visible()
    await expect(page.locator("#reader")).to_be_hidden()
    await page.click("#sidebar-toggle")
    await page.click("[data-theme-choice='light']")
    await page.screenshot(path=str(shots / "webmail-phone-folders.png"))
    await page.keyboard.press("Escape")
    await expect(page.locator("#mail-sidebar")).to_be_hidden()
    await expect(page.locator("#sidebar-toggle")).to_be_focused()
    await page.click("#sidebar-toggle")
    await page.click("[data-folder-link='INBOX']")
    await expect(page.locator("#mail-sidebar")).to_be_hidden()
    await page.screenshot(path=str(shots / "webmail-phone-list.png"))
    await context.close()


async def test_new_mail_and_other_tabs_changes_appear_live(
    world: World, browser: Browser, shots: Path
) -> None:
    handle = "lv" + secrets.token_hex(3)
    address = await provision(world.app, handle)
    # More than a page of older, read mail: the list loads the rest as it is scrolled.
    for number in range(55):
        raw = (
            f"From: Old <old@example.org>\r\nTo: {address}\r\nSubject: Old {number}\r\n"
            f"Message-ID: <old{number}.{handle}@example.org>\r\n\r\nold news\r\n"
        ).encode()
        await deliver_local(
            world.app.state, raw=raw, envelope_from="old@example.org", recipients=[address]
        )
    async with world.app.state.sessionmaker() as session:
        await session.execute(
            update(Message).where(Message.subject.like("Old %")).values(seen=True)
        )
        await session.commit()
    context, page = await signed_in(browser, world, handle)
    rows = page.locator("#message-list .msg-row")
    await expect(rows).to_have_count(listing.PAGE_SIZE)
    await page.locator("#message-list").evaluate("list => list.scrollTo(0, list.scrollHeight)")
    await expect(rows).to_have_count(56)  # 55 old ones and the welcome mail
    await expect(rows.last).to_contain_text("Welcome to VEZE UniQVerse")
    await page.locator("#message-list").evaluate("list => list.scrollTo(0, 0)")
    await expect(page.locator("#mail-app")).to_have_attribute("data-live", "on")
    second = await context.new_page()
    await second.goto(f"{world.email}/ui/inbox")
    await expect(second.locator("#mail-app")).to_have_attribute("data-live", "on")

    await smtp_deliver(world.mx_port, mail(address, "Fresh off the wire", "hello live"))
    fresh = page.locator("#message-list .msg-row:has-text('Fresh off the wire')")
    await expect(fresh).to_be_visible(timeout=LIVE_MS)
    await expect(fresh).to_have_class(re.compile(r"\bunread\b"))
    await expect(rows.first).to_contain_text("Fresh off the wire")
    await expect(page).to_have_title(re.compile(r"^\(2\) INBOX"), timeout=LIVE_MS)
    await expect(page.locator(".folder[data-folder='INBOX'] .count")).to_have_text("2")
    await expect(page.locator("#announcer")).to_contain_text("New mail from")
    await expect(page.locator("#announcer")).to_contain_text("Fresh off the wire")

    # Reading it in the other tab updates this one: row weight, counts and title.
    await second.click("#message-list .msg-row:has-text('Fresh off the wire') .msg-open")
    await expect(fresh).not_to_have_class(re.compile(r"\bunread\b"), timeout=LIVE_MS)
    await expect(page).to_have_title(re.compile(r"^\(1\) INBOX"), timeout=LIVE_MS)
    # Archiving it there removes it here.
    await second.click("[data-action='archive']")
    await expect(fresh).to_have_count(0, timeout=LIVE_MS)
    await page.screenshot(path=str(shots / "webmail-live.png"))

    # A change whose event was lost (a Redis outage): the stream's `events.lost` makes the
    # page catch up from the server.
    inbox_count = page.locator(".folder[data-folder='INBOX'] .count")
    await expect(inbox_count).to_have_text("1")
    async with world.app.state.sessionmaker() as session:
        mine = select(Mailbox.id).where(Mailbox.address == address).scalar_subquery()
        await session.execute(
            update(Message)
            .where(Message.mailbox_id == mine, Message.subject.like("Welcome%"))
            .values(seen=True)
        )
        await session.commit()
    await world.app.state.bus.publish(user_channel(address), {"type": EVENTS_LOST})
    await expect(inbox_count).to_have_count(0, timeout=LIVE_MS)
    await expect(rows.last).not_to_have_class(re.compile(r"\bunread\b"), timeout=LIVE_MS)
    await context.close()


async def test_compose_send_live_reply_forward_and_errors(
    world: World, browser: Browser, shots: Path
) -> None:
    alice_handle, bob_handle = "al" + secrets.token_hex(3), "bo" + secrets.token_hex(3)
    alice = await provision(world.app, alice_handle)
    bob = await provision(world.app, bob_handle)
    await smtp_deliver(
        world.mx_port, mail(alice, "Hello", "hi", sender="Dora Explorer <dora@example.org>")
    )
    alice_context, page = await signed_in(browser, world, alice_handle)
    bob_context, bob_page = await signed_in(browser, world, bob_handle)
    await expect(bob_page.locator("#mail-app")).to_have_attribute("data-live", "on")
    composer = page.locator("#composer")
    error = page.locator("#composer-error")

    # New message: "c"; addresses seen in mail are suggested.
    await page.locator("body").click(position={"x": 5, "y": 300})
    await page.keyboard.press("c")
    await expect(composer).to_be_visible()
    await expect(page.locator("#compose-to")).to_be_focused()
    await page.keyboard.type("dor")
    option = page.locator("#compose-to-list [role=option]")
    await expect(option).to_have_text("Dora Explorer <dora@example.org>")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    await expect(page.locator("#compose-to")).to_have_value("Dora Explorer <dora@example.org>, ")

    # A local recipient that does not exist is refused when sending, named in the form.
    await page.fill("#compose-to", f"ghost@{DOMAIN}")
    await page.fill("#compose-subject", "Anyone?")
    await page.click("#compose-send")
    await expect(error).to_contain_text(f"ghost@{DOMAIN}", timeout=LIVE_MS + 5_000)
    await expect(error).to_contain_text("Not sent")
    await expect(page.locator("#compose-to")).to_have_attribute("aria-invalid", "true")

    # A bad address is named, and the field marked.
    await page.fill("#compose-to", "not-an-address")
    await page.fill("#compose-subject", "Lunch?")
    await page.fill("#compose-text", "Noon at the usual place?")
    await page.click("#compose-send")
    await expect(error).to_contain_text("not-an-address")
    await expect(page.locator("#compose-to")).to_have_attribute("aria-invalid", "true")

    # Attachments: over the limit is refused up front; a small one uploads.
    await page.fill("#compose-to", bob)
    await page.set_input_files(
        "#compose-file",
        files=[
            FilePayload(name="big.bin", mimeType="application/octet-stream", buffer=b"x" * 300_000)
        ],
    )
    await expect(error).to_contain_text("Too big: big.bin")
    await page.set_input_files(
        "#compose-file",
        files=[FilePayload(name="menu.txt", mimeType="text/plain", buffer=b"soup\nbread\n")],
    )
    await expect(page.locator("#composer-attachments")).to_contain_text("menu.txt")
    await expect(page.locator("#composer-status")).to_contain_text("Draft saved")
    await page.screenshot(path=str(shots / "webmail-compose.png"))
    await page.set_viewport_size({"width": 390, "height": 800})
    await page.screenshot(path=str(shots / "webmail-compose-phone.png"))
    await page.set_viewport_size({"width": 1360, "height": 860})

    # Send, undo, send again. The send carries an Idempotency-Key (a retried click after a
    # lost answer gets the first result back, not a second send).
    send_keys: list[str | None] = []
    page.on(
        "request",
        lambda request: (
            send_keys.append(request.headers.get("idempotency-key"))
            if request.method == "POST" and request.url.endswith("/send")
            else None
        ),
    )
    await page.click("#compose-send")
    await expect(page.locator("#toast")).to_contain_text("Sending in 5 seconds")
    await page.click("#toast button")
    await expect(composer).to_be_visible()
    await expect(page.locator("#composer-status")).to_contain_text("Sending undone")
    await page.click("#compose-send")
    await expect(composer).to_be_hidden()
    await expect(page.locator("#toast")).to_contain_text("Sent.", timeout=LIVE_MS + 5_000)
    assert len(send_keys) == 1 and re.fullmatch(r"[0-9a-f]{32}", send_keys[0] or "")

    # Bob sees it arrive without a reload, with its attachment.
    arrived = bob_page.locator("#message-list .msg-row:has-text('Lunch?')")
    await expect(arrived).to_be_visible(timeout=LIVE_MS)
    await expect(arrived).to_have_class(re.compile(r"\bunread\b"))
    await arrived.locator(".msg-open").click()
    await expect(bob_page.locator(".attachments")).to_contain_text("menu.txt")

    # He replies: quoted, "Re:", to Alice.
    await bob_page.locator("#reader").click(position={"x": 5, "y": 5})
    await bob_page.keyboard.press("r")
    await expect(bob_page.locator("#composer-title")).to_have_text("Reply")
    await expect(bob_page.locator("#compose-to")).to_have_value(re.compile(re.escape(alice)))
    await expect(bob_page.locator("#compose-subject")).to_have_value("Re: Lunch?")
    await expect(bob_page.locator("#compose-text")).to_have_value(
        re.compile(r"> Noon at the usual place\?")
    )
    await bob_page.locator("#compose-text").press("Home")
    await bob_page.keyboard.type("Yes, see you there.")
    await bob_page.keyboard.press("Control+Enter")
    await expect(bob_page.locator("#toast")).to_contain_text("Sent.", timeout=LIVE_MS + 5_000)

    # Alice gets the reply live, in a conversation with her sent message.
    reply = page.locator("#message-list .msg-row:has-text('Re: Lunch?')")
    await expect(reply).to_be_visible(timeout=LIVE_MS)
    await reply.locator(".msg-open").click()
    await expect(page.locator(".conversation .thread-item")).to_have_count(2)
    await page.click(".conversation summary")
    await expect(page.locator(".conversation .thread-body")).to_contain_text(
        "Noon at the usual place?"
    )
    await expect(page.locator(".conversation .thread-body")).to_contain_text("menu.txt")
    await expect(page.locator("#mail-text")).to_contain_text("Yes, see you there.")
    await page.screenshot(path=str(shots / "webmail-conversation.png"))
    # Alice's message ids are not Bob's to open, frame or view: 404 like a missing one.
    reply_id = await reply.get_attribute("data-id")
    for path in ("", "/frame", "/source"):
        refused = await bob_page.request.get(f"{world.email}/ui/mail/messages/{reply_id}{path}")
        assert refused.status == 404, path

    # Forward: "Fwd:", autosaved as a draft, then discarded.
    await page.locator("#reader").click(position={"x": 5, "y": 5})
    await page.keyboard.press("f")
    await expect(page.locator("#compose-subject")).to_have_value("Fwd: Re: Lunch?")
    await page.fill("#compose-to", "dora@example.org")
    await expect(page.locator("#composer-status")).to_contain_text("Draft saved")
    await expect(page.locator(".folder[data-folder='Drafts'] .count")).to_have_text("1")
    await page.click("[data-compose='discard']")
    await expect(page.locator("#toast")).to_contain_text("Draft discarded")
    await expect(page.locator(".folder[data-folder='Drafts'] .count")).to_have_count(0)
    await alice_context.close()
    await bob_context.close()


async def until(page: Page, condition: Callable[[], bool]) -> None:
    """Wait (bounded) for a condition the page's network handlers make true."""
    for _ in range(STEP_MS // 50):
        if condition():
            return
        await page.wait_for_timeout(50)
    raise AssertionError("condition not met in time")


async def _row_id(page: Page, subject: str) -> str:
    row = page.locator(f"#message-list .msg-row:has-text('{subject}')").first
    return await row.get_attribute("data-id") or ""
