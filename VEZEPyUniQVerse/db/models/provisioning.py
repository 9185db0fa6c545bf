"""Provisioning of a handle's resources in the other services."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import CheckConstraint, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from VEZEPyCore.db.types import UTCDateTime
from VEZEPyUniQVerse.db.models.base import Base

ProvisioningStatus = Literal["pending", "done", "failed"]
PROVISIONING_STATUSES: tuple[ProvisioningStatus, ...] = ("pending", "done", "failed")


class Provisioning(Base):
    """One row per handle: what was provisioned for it and how the last attempt went."""

    __tablename__ = "provisioning"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'done', 'failed')", name="ck_provisioning_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handle: Mapped[str] = mapped_column(String(32), unique=True)
    address: Mapped[str] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
