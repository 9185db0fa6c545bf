"""What the DNS admin page and API return."""

from __future__ import annotations

from pydantic import BaseModel


class DnsRecordRead(BaseModel):
    type: str
    name: str
    value: str
    purpose: str


class DnsRecordsRead(BaseModel):
    domain: str
    selector: str
    records: list[DnsRecordRead]
