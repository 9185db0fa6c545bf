"""Provisioning of a handle's resources in the other services: the skeleton's per-handle
record (`POST /provision/{handle}`) and the durable per-target task queue filled by sign-up."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import CheckConstraint, Index, Integer, String, Text, UniqueConstraint
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


ProvisioningTarget = Literal["email", "game"]
PROVISIONING_TARGETS: tuple[ProvisioningTarget, ...] = ("email", "game")
TaskStatus = Literal["pending", "done"]


class ProvisioningTask(Base):
    """One durable unit of provisioning work: a handle's resource in one target service.

    Added in the sign-up transaction, so the account and its tasks commit (or roll back)
    together; the portal's worker then calls the target until it succeeds. `next_attempt_at`
    doubles as the lease: a worker that claims a task pushes it into the future before the call,
    so no other worker takes it, and a worker that dies mid-call lets it fall due again.
    """

    __tablename__ = "provisioning_tasks"
    __table_args__ = (
        UniqueConstraint("handle", "target", name="uq_provisioning_tasks_handle_target"),
        Index("ix_provisioning_tasks_due", "status", "next_attempt_at"),
        CheckConstraint("target IN ('email', 'game')", name="ck_provisioning_tasks_target"),
        CheckConstraint(
            "status IN ('pending', 'done', 'failed')", name="ck_provisioning_tasks_status"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    handle: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(16))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: Attempts started (counted when claimed, so a crash mid-call still counts).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: Random token of the claim in force; only its holder may record the outcome.
    lease_token: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
