"""DKIM keys (RFC 6376): created once, private, published through the admin API and page."""

from __future__ import annotations

import stat
from collections.abc import Callable

import dkim  # type: ignore[import-untyped]
import httpx

from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.dkim.records import txt_chunks
from VEZEPyEmail.services.dkim.service import key_path, load_or_create_key

RAW = (
    b"From: Alice <alice@vezeuniqverse.com>\r\nTo: bob@example.org\r\nSubject: signed\r\n"
    b"Date: Fri, 27 Nov 2026 05:00:00 +0000\r\nMessage-ID: <k1@vezeuniqverse.com>\r\n\r\n"
    b"body line\r\n"
)


def test_key_is_created_once_private_and_2048_bits(email_settings: EmailSettings) -> None:
    key = load_or_create_key(email_settings)
    path = key_path(email_settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_or_create_key(email_settings)
    assert again.private_pem == key.private_pem
    assert key.record_name == "veze1._domainkey.vezeuniqverse.com"
    assert key.txt_record.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # 2048-bit SPKI prefix


def test_signature_verifies_and_tampering_is_detected(email_settings: EmailSettings) -> None:
    key = load_or_create_key(email_settings)
    signed = key.sign(RAW)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"veze1._domainkey.vezeuniqverse.com."
        return key.txt_record.encode()

    assert dkim.verify(signed, dnsfunc=dnsfunc)
    assert not dkim.verify(signed.replace(b"body line", b"body lime"), dnsfunc=dnsfunc)


def test_long_txt_values_are_split_in_255_octet_strings() -> None:
    chunks = txt_chunks("x" * 600)
    assert [len(chunk) for chunk in chunks] == [255, 255, 90]


async def test_admin_api_and_page_show_the_exact_record(
    email_client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    mint: Callable[..., str],
    email_settings: EmailSettings,
) -> None:
    key = load_or_create_key(email_settings)  # the one the app created on start
    response = await email_client.get("/api/admin/dns", headers=admin_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["selector"] == "veze1"
    records = {(r["type"], r["name"]): r["value"] for r in body["records"]}
    assert records[("TXT", "veze1._domainkey.vezeuniqverse.com.")] == key.txt_record
    assert records[("MX", "vezeuniqverse.com.")] == "10 mail.vezeuniqverse.com."
    assert records[("TXT", "vezeuniqverse.com.")].startswith("v=spf1")
    assert records[("TXT", "_dmarc.vezeuniqverse.com.")].startswith("v=DMARC1")

    page = await email_client.get("/ui/admin/dns", headers=admin_headers)
    assert page.status_code == 200
    assert key.public_b64[:200] in page.text

    user = {"Authorization": f"Bearer {mint('alice@vezeuniqverse.com', scopes=('email.read',))}"}
    assert (await email_client.get("/api/admin/dns", headers=user)).status_code == 403
    assert (await email_client.get("/ui/admin/dns", headers=user)).status_code == 403
    assert (await email_client.get("/api/admin/dns")).status_code == 401
