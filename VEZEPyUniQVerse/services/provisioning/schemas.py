from __future__ import annotations

from pydantic import BaseModel, Field

from VEZEPyUniQVerse.db.models import ProvisioningStatus


class ProvisioningCreate(BaseModel):
    display_name: str = Field("", max_length=200, description="Shown in the welcome mail")


class ProvisioningRead(BaseModel):
    handle: str
    address: str
    status: ProvisioningStatus
    created: bool = Field(description="True when this call created the mailbox")
