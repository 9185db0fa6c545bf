"""Purchases, the provider's events, inventory and equipped cosmetics.

Functions take the caller's session and only flush; the router commits. A purchase is
`pending` until the provider's signed webhook says it was paid; only then is the item granted,
once per provider reference however often the provider repeats itself. A refund takes the
item back (and off the board).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.db.engine import begin_as_writer
from VEZEPyCore.errors import BadRequest, Conflict, Forbidden, NotFound
from VEZEPyGame.db.models import Player
from VEZEPyGame.db.store import EquippedCosmetic, InventoryItem, Purchase, WebhookEvent
from VEZEPyGame.services.players.service import get_player, handle_of
from VEZEPyGame.services.store.catalogue import SLOTS, Catalogue, CatalogueItem
from VEZEPyGame.services.store.schemas import (
    CosmeticRead,
    CosmeticsRead,
    InventoryItemRead,
    StoreItemRead,
    StoreRead,
    WebhookEventIn,
    WebhookResult,
)

#: How many of their own purchases a player sees (newest first).
PURCHASE_HISTORY_LIMIT = 50


class Replay(Conflict):
    code = "replayed_event"


def _now() -> datetime:
    return datetime.now(UTC)


async def find_player(
    session: AsyncSession, principal: Principal, *, mail_domain: str
) -> Player | None:
    """The caller's own player, None when the account has none yet."""
    handle = handle_of(principal, mail_domain=mail_domain)
    return await get_player(session, handle=handle) if handle else None


async def require_player(
    session: AsyncSession, principal: Principal, *, mail_domain: str
) -> Player:
    """The caller's own player; 404 when the account has none yet."""
    player = await find_player(session, principal, mail_domain=mail_domain)
    if player is None:
        raise NotFound("no player profile for this account yet")
    return player


# -- reading -----------------------------------------------------------------------------------


async def owned_item_ids(session: AsyncSession, *, player_id: int) -> set[str]:
    rows = await session.scalars(
        select(InventoryItem.item_id).where(
            InventoryItem.player_id == player_id, InventoryItem.revoked_at.is_(None)
        )
    )
    return set(rows)


async def equipped_item_ids(session: AsyncSession, *, player_id: int) -> dict[str, str]:
    rows = await session.execute(
        select(EquippedCosmetic.slot, EquippedCosmetic.item_id).where(
            EquippedCosmetic.player_id == player_id
        )
    )
    return {row.slot: row.item_id for row in rows}


async def store_view(session: AsyncSession, *, catalogue: Catalogue, player_id: int) -> StoreRead:
    owned = await owned_item_ids(session, player_id=player_id)
    equipped = set((await equipped_item_ids(session, player_id=player_id)).values())
    return StoreRead(
        currency=catalogue.currency,
        items=[
            StoreItemRead(
                **item.model_dump(),
                currency=catalogue.currency,
                owned=item.id in owned,
                equipped=item.id in equipped,
            )
            for item in catalogue.items
        ],
    )


async def inventory(
    session: AsyncSession, *, catalogue: Catalogue, player_id: int
) -> list[InventoryItemRead]:
    rows = await session.scalars(
        select(InventoryItem)
        .where(InventoryItem.player_id == player_id, InventoryItem.revoked_at.is_(None))
        .order_by(InventoryItem.acquired_at, InventoryItem.id)
    )
    equipped = set((await equipped_item_ids(session, player_id=player_id)).values())
    items: list[InventoryItemRead] = []
    for row in rows:
        item = catalogue.get(row.item_id)
        if item is None:  # withdrawn from the catalogue: nothing left to show or wear
            continue
        items.append(
            InventoryItemRead(
                item_id=item.id,
                slot=item.slot,
                name=item.name,
                style=item.style,
                acquired_at=row.acquired_at,
                equipped=item.id in equipped,
            )
        )
    return items


async def cosmetics(
    session: AsyncSession, *, catalogue: Catalogue, player_id: int
) -> CosmeticsRead:
    equipped = await equipped_item_ids(session, player_id=player_id)
    worn: dict[str, CosmeticRead] = {}
    for slot, item_id in equipped.items():
        item = catalogue.get(item_id)
        if item is not None and item.slot == slot:
            worn[slot] = CosmeticRead(item_id=item.id, name=item.name, style=item.style)
    return CosmeticsRead(**worn)


async def purchases(session: AsyncSession, *, player_id: int) -> list[Purchase]:
    rows = await session.scalars(
        select(Purchase)
        .where(Purchase.player_id == player_id)
        .order_by(Purchase.created_at.desc(), Purchase.id.desc())
        .limit(PURCHASE_HISTORY_LIMIT)
    )
    return list(rows)


# -- buying ------------------------------------------------------------------------------------


def catalogue_item(catalogue: Catalogue, item_id: str) -> CatalogueItem:
    item = catalogue.get(item_id)
    if item is None:
        raise NotFound(f"no item {item_id!r} in the store")
    return item


async def start_purchase(
    session: AsyncSession, *, catalogue: Catalogue, player_id: int, item_id: str
) -> Purchase:
    """A pending purchase with a fresh provider reference (or the one already pending).

    409 when the player already owns the item: nobody pays twice for the same cosmetic.
    """
    item = catalogue_item(catalogue, item_id)
    await begin_as_writer(session)
    if item.id in await owned_item_ids(session, player_id=player_id):
        raise Conflict("you already own this item")
    pending = await session.scalar(
        select(Purchase).where(
            Purchase.player_id == player_id,
            Purchase.item_id == item.id,
            Purchase.status == "pending",
        )
    )
    if pending is not None:
        return pending
    purchase = Purchase(
        player_id=player_id,
        item_id=item.id,
        provider_ref="pi_" + secrets.token_hex(16),
        price_cents=item.price_cents,
        currency=catalogue.currency,
        status="pending",
        created_at=_now(),
    )
    session.add(purchase)
    await session.flush()
    return purchase


# -- the provider's events ---------------------------------------------------------------------


async def apply_webhook_event(session: AsyncSession, *, event: WebhookEventIn) -> WebhookResult:
    """Apply one verified provider event; the caller commits (which also records the event id,
    so a concurrent second delivery of the same id fails on the primary key and is a replay).
    """
    await begin_as_writer(session)
    if await session.get(WebhookEvent, event.id) is not None:
        raise Replay(f"event {event.id} was already processed")
    purchase = await session.scalar(
        select(Purchase).where(Purchase.provider_ref == event.data.reference).with_for_update()
    )
    if purchase is None:
        raise NotFound(f"no purchase with reference {event.data.reference!r}")
    if event.type == "payment.succeeded":
        outcome = await _complete(session, purchase, event)
    elif event.type == "payment.refunded":
        outcome = await _refund(session, purchase)
    else:
        outcome = _fail(purchase)
    session.add(
        WebhookEvent(
            event_id=event.id,
            type=event.type,
            provider_ref=event.data.reference,
            outcome=outcome,
            received_at=_now(),
        )
    )
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent delivery of the same event id got there first
        raise Replay(f"event {event.id} was already processed") from exc
    return WebhookResult.model_validate({"event_id": event.id, "outcome": outcome})


async def _complete(session: AsyncSession, purchase: Purchase, event: WebhookEventIn) -> str:
    if purchase.status in ("completed", "refunded"):
        return "already_completed"  # idempotent by reference: the item was granted once
    if (event.data.amount_cents, event.data.currency) != (purchase.price_cents, purchase.currency):
        raise BadRequest(
            f"paid {event.data.amount_cents} {event.data.currency}, the purchase costs "
            f"{purchase.price_cents} {purchase.currency}"
        )
    now = _now()
    purchase.status = "completed"
    purchase.completed_at = now
    owned = await session.scalar(
        select(InventoryItem).where(
            InventoryItem.player_id == purchase.player_id,
            InventoryItem.item_id == purchase.item_id,
        )
    )
    if owned is None:
        session.add(
            InventoryItem(
                player_id=purchase.player_id,
                item_id=purchase.item_id,
                purchase_id=purchase.id,
                acquired_at=now,
            )
        )
    else:  # bought back after a refund, or paid twice by two pending purchases
        owned.purchase_id = purchase.id
        owned.acquired_at = now
        owned.revoked_at = None
    return "completed"


async def _refund(session: AsyncSession, purchase: Purchase) -> str:
    if purchase.status == "refunded":
        return "already_refunded"
    if purchase.status != "completed":
        raise Conflict(f"purchase {purchase.provider_ref} is {purchase.status}: nothing to refund")
    now = _now()
    purchase.status = "refunded"
    purchase.refunded_at = now
    owned = await session.scalar(
        select(InventoryItem).where(
            InventoryItem.purchase_id == purchase.id, InventoryItem.revoked_at.is_(None)
        )
    )
    if owned is not None:
        owned.revoked_at = now
        await session.execute(
            delete(EquippedCosmetic).where(
                EquippedCosmetic.player_id == purchase.player_id,
                EquippedCosmetic.item_id == purchase.item_id,
            )
        )
    return "refunded"


def _fail(purchase: Purchase) -> str:
    if purchase.status != "pending":
        return "ignored"  # a late failure notice never takes back a completed payment
    purchase.status = "failed"
    return "failed"


# -- wearing -----------------------------------------------------------------------------------


async def equip(
    session: AsyncSession, *, catalogue: Catalogue, player_id: int, slot: str, item_id: str
) -> None:
    """Wear an owned item in its slot (replacing what was there)."""
    if slot not in SLOTS:
        raise NotFound(f"no cosmetic slot {slot!r}")
    item = catalogue_item(catalogue, item_id)
    if item.slot != slot:
        raise BadRequest(
            f"{item.name} is a {item.slot.replace('_', ' ')}, not a {slot.replace('_', ' ')}"
        )
    await begin_as_writer(session)
    if item.id not in await owned_item_ids(session, player_id=player_id):
        raise Forbidden("you do not own this item")
    current = await session.get(EquippedCosmetic, (player_id, slot))
    if current is None:
        session.add(
            EquippedCosmetic(player_id=player_id, slot=slot, item_id=item.id, equipped_at=_now())
        )
    else:
        current.item_id = item.id
        current.equipped_at = _now()
    await session.flush()


async def unequip(session: AsyncSession, *, player_id: int, slot: str) -> None:
    if slot not in SLOTS:
        raise NotFound(f"no cosmetic slot {slot!r}")
    await session.execute(
        delete(EquippedCosmetic).where(
            EquippedCosmetic.player_id == player_id, EquippedCosmetic.slot == slot
        )
    )
