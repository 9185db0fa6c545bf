"""What the store API reads and returns, and the provider's webhook event."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from VEZEPyGame.services.store.catalogue import Slot


class StoreItemRead(BaseModel):
    id: str
    slot: Slot
    name: str
    description: str
    price_cents: int
    currency: str
    style: dict[str, str]
    owned: bool = False
    equipped: bool = False


class StoreRead(BaseModel):
    currency: str
    items: list[StoreItemRead]


class PurchaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=64)


class PurchaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    item_id: str
    #: The payment intent id to hand the provider; its webhook events name it.
    provider_ref: str
    price_cents: int
    currency: str
    status: Literal["pending", "completed", "failed", "refunded"]
    created_at: datetime
    completed_at: datetime | None
    refunded_at: datetime | None


class PurchaseList(BaseModel):
    purchases: list[PurchaseRead]


class InventoryItemRead(BaseModel):
    item_id: str
    slot: Slot
    name: str
    style: dict[str, str]
    acquired_at: datetime
    equipped: bool


class InventoryRead(BaseModel):
    items: list[InventoryItemRead]


class EquipUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(min_length=1, max_length=64)


class CosmeticRead(BaseModel):
    item_id: str
    name: str
    style: dict[str, str]


class CosmeticsRead(BaseModel):
    """What the player wears; a slot with nothing equipped is null (the default look)."""

    piece_colour: CosmeticRead | None = None
    board_theme: CosmeticRead | None = None


WebhookType = Literal["payment.succeeded", "payment.failed", "payment.refunded"]


class WebhookPayment(BaseModel):
    model_config = ConfigDict(extra="ignore")

    reference: str = Field(min_length=1, max_length=128)
    amount_cents: int = Field(ge=0, le=10_000_000)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class WebhookEventIn(BaseModel):
    """One provider event; unknown fields are ignored so the provider can add to it."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1, max_length=128)
    type: WebhookType
    data: WebhookPayment


class WebhookResult(BaseModel):
    event_id: str
    outcome: Literal[
        "completed", "already_completed", "failed", "refunded", "already_refunded", "ignored"
    ]
