"""The document shown inside the reading pane's sandboxed iframe.

Defence in depth for hostile HTML mail:
1. the API's HTML is already nh3-sanitised (no scripts, styles, event handlers, javascript:);
2. it is cleaned again here: remote images lose their `src` unless the person allowed them,
   links open in a new tab without a referrer;
3. the frame's response carries a Content-Security-Policy that allows no script, no network
   fetch (remote images only when allowed), no forms, no base URL, and `sandbox`;
4. the iframe element itself is sandboxed (no scripts, no same-origin, no top navigation).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import nh3

_REMOTE = re.compile(r"^\s*(https?:)?//", re.IGNORECASE)
_INLINE_IMAGE = re.compile(r"^\s*data:image/(png|jpeg|gif|webp|bmp);", re.IGNORECASE)
#: The frame may open links in a new tab, nothing else (no scripts, forms or top navigation).
IFRAME_SANDBOX = "allow-popups allow-popups-to-escape-sandbox"


@dataclass(frozen=True)
class FrameDocument:
    html: str
    content_security_policy: str


def clean_body(html: str, *, images_allowed: bool) -> tuple[str, int]:
    """The body for the frame and the number of remote images it blocked."""
    blocked = 0

    def keep(tag: str, attribute: str, value: str) -> str | None:
        nonlocal blocked
        if tag == "img" and attribute == "src":
            if _REMOTE.match(value):
                if images_allowed:
                    return value
                blocked += 1
                return None
            return value if _INLINE_IMAGE.match(value) else None
        if value.strip().lower().startswith("data:"):
            return None  # data: URLs are for inline images only
        return value

    cleaned = nh3.clean(
        html,
        attribute_filter=keep,
        link_rel="noopener noreferrer nofollow",
        url_schemes=nh3.ALLOWED_URL_SCHEMES | {"data"},
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )
    return cleaned, blocked


def content_security_policy(nonce: str, *, images_allowed: bool) -> str:
    images = "data: https: http:" if images_allowed else "data:"
    return "; ".join(
        (
            "default-src 'none'",
            f"img-src {images}",
            f"style-src 'nonce-{nonce}'",
            "font-src 'none'",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'self'",
            f"sandbox {IFRAME_SANDBOX}",
        )
    )


_STYLE = (
    "html{color-scheme:light}"
    "body{margin:0;padding:16px;font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:#1c2233;background:#fff;overflow-wrap:anywhere}"
    "img{max-width:100%;height:auto}table{max-width:100%}"
    "blockquote{margin:0 0 0 .5em;padding-left:.75em;border-left:3px solid #c8cede;color:#4a5370}"
    "pre{white-space:pre-wrap}a{color:#3a49c9}"
)


def document(html: str, *, images_allowed: bool) -> tuple[FrameDocument, int]:
    """A complete HTML document for the frame, its CSP, and the count of blocked images."""
    body, blocked = clean_body(html, images_allowed=images_allowed)
    nonce = secrets.token_urlsafe(16)
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        f'<style nonce="{nonce}">{_STYLE}</style></head><body>{body}</body></html>'
    )
    return FrameDocument(
        page, content_security_policy(nonce, images_allowed=images_allowed)
    ), blocked
