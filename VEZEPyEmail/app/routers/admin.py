"""Operator endpoints: the DNS records to publish for the mail domain (scope email.admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from VEZEPyCore.web.templates import render
from VEZEPyEmail.app.deps import SettingsDep
from VEZEPyEmail.app.security import AdminPrincipal
from VEZEPyEmail.services.dkim.records import dns_records, zone_txt
from VEZEPyEmail.services.dkim.schemas import DnsRecordsRead

router = APIRouter(tags=["admin"])


@router.get("/api/admin/dns", response_model=DnsRecordsRead)
async def get_dns_records(
    request: Request, principal: AdminPrincipal, settings: SettingsDep
) -> DnsRecordsRead:
    """The MX, SPF, DKIM and DMARC records to publish for the mail domain."""
    return dns_records(settings, request.app.state.dkim_key)


@router.get("/ui/admin/dns", response_class=HTMLResponse, include_in_schema=False)
async def dns_page(
    request: Request, principal: AdminPrincipal, settings: SettingsDep
) -> HTMLResponse:
    """The same records as a page, with the TXT values ready to paste into a zone file."""
    records = dns_records(settings, request.app.state.dkim_key)
    rows = [
        {
            "record": record,
            "zone": f"{record.name} IN {record.type} "
            + (zone_txt(record.value) if record.type == "TXT" else record.value),
        }
        for record in records.records
    ]
    return render(
        request,
        "admin_dns.html",
        {
            "records": records,
            "rows": rows,
            "portal_url": request.app.state.registry.public_url("portal"),
            "handle": principal.subject,
        },
    )
