from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from VEZEPyUniQVerse.db.models import ProvisioningStatus, ProvisioningTarget


class ProvisioningCreate(BaseModel):
    display_name: str = Field("", max_length=200, description="Shown in the welcome mail")


class ProvisioningRead(BaseModel):
    handle: str
    address: str
    status: ProvisioningStatus
    created: bool = Field(description="True when this call created the mailbox")


#: What the account page shows per target: `failed-retrying` is a pending task whose last
#: attempt failed and that the worker will try again at `next_attempt_at`; `failed` is one
#: given up on (only with UNI_PROVISIONING_MAX_ATTEMPTS), waiting for an operator's replay.
ProvisioningTaskState = Literal["pending", "done", "failed-retrying", "failed"]


class ProvisioningTaskRead(BaseModel):
    target: ProvisioningTarget
    status: ProvisioningTaskState
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="None once done or given up")
