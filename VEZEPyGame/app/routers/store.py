"""The cosmetics store: catalogue, purchases, the provider's webhook, inventory, equipping.

API routes take a bearer (or the game pages' session cookie with CSRF); the webhook takes no
token at all: the provider proves itself by signing the raw body (services/store/signature.py).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from VEZEPyCore.auth import scopes
from VEZEPyCore.auth.deps import check_scopes
from VEZEPyCore.auth.principal import Principal
from VEZEPyCore.errors import AppError
from VEZEPyCore.security.csrf import require_csrf
from VEZEPyCore.web.sso import PageUser
from VEZEPyCore.web.templates import render
from VEZEPyGame.app.deps import RegistryDep, SessionDep, SettingsDep
from VEZEPyGame.app.security import PlayPrincipal
from VEZEPyGame.services.registry import portal_url, webmail_url
from VEZEPyGame.services.store import service
from VEZEPyGame.services.store.catalogue import Slot
from VEZEPyGame.services.store.deps import CatalogueDep
from VEZEPyGame.services.store.metrics import StoreMetrics
from VEZEPyGame.services.store.schemas import (
    CosmeticsRead,
    EquipUpdate,
    InventoryRead,
    PurchaseCreate,
    PurchaseList,
    PurchaseRead,
    StoreRead,
    WebhookEventIn,
    WebhookResult,
)
from VEZEPyGame.services.store.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from VEZEPyGame.services.telemetry.body import read_bounded_body

router = APIRouter(tags=["store"])

#: A provider event is a few hundred bytes; anything near this is not one.
MAX_WEBHOOK_BYTES = 16_384
_NO_PLAYER: dict[int | str, dict[str, Any]] = {
    404: {"description": "No player for this account (not provisioned yet)"}
}


@router.get("/api/store", response_model=StoreRead, summary="The catalogue, with what you own")
async def read_store(
    principal: PlayPrincipal, session: SessionDep, settings: SettingsDep, catalogue: CatalogueDep
) -> StoreRead:
    """Every item for sale, marked `owned`/`equipped` for the caller."""
    player = await service.require_player(session, principal, mail_domain=settings.mail_domain)
    return await service.store_view(session, catalogue=catalogue, player_id=player.id)


@router.post(
    "/api/store/purchases",
    response_model=PurchaseRead,
    status_code=status.HTTP_201_CREATED,
    summary="Start a purchase (pending until the provider confirms payment)",
    responses={
        **_NO_PLAYER,
        404: {"description": "No such item, or no player for this account"},
        409: {"description": "You already own the item"},
    },
)
async def start_purchase(
    body: PurchaseCreate,
    principal: PlayPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    catalogue: CatalogueDep,
) -> PurchaseRead:
    """A pending purchase and its `provider_ref`; a second call while it is pending returns it."""
    player = await service.require_player(session, principal, mail_domain=settings.mail_domain)
    purchase = await service.start_purchase(
        session, catalogue=catalogue, player_id=player.id, item_id=body.item_id
    )
    await session.commit()
    return PurchaseRead.model_validate(purchase)


@router.get(
    "/api/store/purchases",
    response_model=PurchaseList,
    summary="Your purchases, newest first",
    responses=_NO_PLAYER,
)
async def list_purchases(
    principal: PlayPrincipal, session: SessionDep, settings: SettingsDep
) -> PurchaseList:
    """The caller's own purchases (the last 50), with their status."""
    player = await service.require_player(session, principal, mail_domain=settings.mail_domain)
    rows = await service.purchases(session, player_id=player.id)
    return PurchaseList(purchases=[PurchaseRead.model_validate(row) for row in rows])


@router.post(
    "/webhooks/store",
    response_model=WebhookResult,
    summary="Payment provider events (HMAC-SHA256 signed; see docs/game-store.md)",
    responses={
        400: {"description": "Stale timestamp, amount mismatch or malformed event"},
        401: {"description": "Missing or wrong signature"},
        404: {"description": "No purchase with that reference"},
        409: {"description": "Event id already processed (replay), or nothing to refund"},
        413: {"description": "Body too large"},
    },
)
async def receive_store_webhook(
    request: Request, session: SessionDep, settings: SettingsDep
) -> WebhookResult:
    """Complete, fail or refund a purchase. Verified over the raw body before it is parsed."""
    metrics: StoreMetrics = request.app.state.store_metrics
    try:
        result = await _apply_webhook(request, session, settings)
    except AppError as exc:
        metrics.webhook(exc.code)
        raise
    except RequestValidationError:
        metrics.webhook("rejected")
        raise
    metrics.webhook(result.outcome)
    return result


async def _apply_webhook(
    request: Request, session: SessionDep, settings: SettingsDep
) -> WebhookResult:
    body = await read_bounded_body(request, max_bytes=MAX_WEBHOOK_BYTES)
    verify(
        secret=request.app.state.store_webhook_secret,
        timestamp=request.headers.get(TIMESTAMP_HEADER),
        signature=request.headers.get(SIGNATURE_HEADER),
        body=body,
        now=time.time(),
        tolerance_seconds=settings.store_webhook_tolerance_seconds,
    )
    try:
        event = WebhookEventIn.model_validate_json(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    result = await service.apply_webhook_event(session, event=event)
    try:
        await session.commit()
    except IntegrityError as exc:  # the same event id committed concurrently elsewhere
        await session.rollback()
        raise service.Replay(f"event {event.id} was already processed") from exc
    return result


@router.get(
    "/api/players/me/inventory",
    response_model=InventoryRead,
    summary="The cosmetics you own",
    responses=_NO_PLAYER,
)
async def read_inventory(
    principal: PlayPrincipal, session: SessionDep, settings: SettingsDep, catalogue: CatalogueDep
) -> InventoryRead:
    """Owned items (refunded ones are gone), oldest first, marked `equipped`."""
    player = await service.require_player(session, principal, mail_domain=settings.mail_domain)
    items = await service.inventory(session, catalogue=catalogue, player_id=player.id)
    return InventoryRead(items=items)


@router.get(
    "/api/players/me/cosmetics",
    response_model=CosmeticsRead,
    summary="What you wear on the board (piece colour, board theme)",
    responses=_NO_PLAYER,
)
async def read_cosmetics(
    principal: PlayPrincipal, session: SessionDep, settings: SettingsDep, catalogue: CatalogueDep
) -> CosmeticsRead:
    """The equipped item per slot with its colours; null means the default look."""
    player = await service.require_player(session, principal, mail_domain=settings.mail_domain)
    return await service.cosmetics(session, catalogue=catalogue, player_id=player.id)


@router.put(
    "/api/players/me/cosmetics/{slot}",
    response_model=CosmeticsRead,
    summary="Equip an owned item in its slot",
    responses={
        400: {"description": "The item belongs to another slot"},
        403: {"description": "You do not own the item"},
        404: {"description": "No such slot or item, or no player"},
    },
)
async def equip_cosmetic(
    slot: Slot,
    body: EquipUpdate,
    principal: PlayPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    catalogue: CatalogueDep,
) -> CosmeticsRead:
    """Wear `item_id` in `slot`, replacing what was there."""
    player = await service.require_player(session, principal, mail_domain=settings.mail_domain)
    await service.equip(
        session, catalogue=catalogue, player_id=player.id, slot=slot, item_id=body.item_id
    )
    await session.commit()
    return await service.cosmetics(session, catalogue=catalogue, player_id=player.id)


@router.delete(
    "/api/players/me/cosmetics/{slot}",
    response_model=CosmeticsRead,
    summary="Back to the default look in a slot",
    responses=_NO_PLAYER,
)
async def unequip_cosmetic(
    slot: Slot,
    principal: PlayPrincipal,
    session: SessionDep,
    settings: SettingsDep,
    catalogue: CatalogueDep,
) -> CosmeticsRead:
    """Take off whatever is worn in `slot`."""
    player = await service.require_player(session, principal, mail_domain=settings.mail_domain)
    await service.unequip(session, player_id=player.id, slot=slot)
    await session.commit()
    return await service.cosmetics(session, catalogue=catalogue, player_id=player.id)


# -- pages -------------------------------------------------------------------------------------


def page_context(registry: RegistryDep, principal: Principal) -> dict[str, Any]:
    """What the game's layout needs on every signed-in page."""
    return {
        "portal_url": portal_url(registry),
        "webmail_url": webmail_url(registry),
        "handle": principal.claims.get("preferred_username")
        or principal.address
        or principal.subject,
    }


def page_refusal(
    request: Request, registry: RegistryDep, principal: Principal, scope: str
) -> HTMLResponse | None:
    """A 403 page (not a JSON error) when the signed-in person lacks `scope`."""
    if principal.has_scopes(scope):
        return None
    reason = (
        "This page is for administrators of the game."
        if scope == scopes.GAME_ADMIN
        else "Your sign-in does not allow playing; sign out and in again."
    )
    context = {**page_context(registry, principal), "reason": reason}
    return render(request, "forbidden.html", context, status_code=403)


def no_player_page(request: Request, registry: RegistryDep, principal: Principal) -> HTMLResponse:
    return render(request, "no_player.html", page_context(registry, principal), status_code=404)


@router.get("/ui/store", response_class=HTMLResponse, include_in_schema=False)
async def store_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    catalogue: CatalogueDep,
    registry: RegistryDep,
) -> HTMLResponse:
    """The catalogue with buy buttons, and the player's purchases."""
    refused = page_refusal(request, registry, principal, scopes.GAME_PLAY)
    if refused is not None:
        return refused
    player = await service.find_player(session, principal, mail_domain=settings.mail_domain)
    if player is None:
        return no_player_page(request, registry, principal)
    store = await service.store_view(session, catalogue=catalogue, player_id=player.id)
    history = await service.purchases(session, player_id=player.id)
    names = {item.id: item.name for item in catalogue.items}
    return render(
        request,
        "store.html",
        {
            **page_context(registry, principal),
            "store": store,
            "purchases": history,
            "names": names,
            "started": request.query_params.get("started"),
        },
    )


@router.post("/ui/store/buy", include_in_schema=False)
async def buy_from_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    catalogue: CatalogueDep,
    item_id: Annotated[str, Form(min_length=1, max_length=64)],
) -> RedirectResponse:
    """The page's buy button: start the purchase, then show it pending on the store page."""
    await require_csrf(request)
    check_scopes(principal, (scopes.GAME_PLAY,))
    player = await service.require_player(session, principal, mail_domain=settings.mail_domain)
    purchase = await service.start_purchase(
        session, catalogue=catalogue, player_id=player.id, item_id=item_id
    )
    await session.commit()
    return RedirectResponse(
        f"{request.url_for('store_page')}?started={purchase.provider_ref}", status_code=303
    )


@router.get("/ui/inventory", response_class=HTMLResponse, include_in_schema=False)
async def inventory_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    catalogue: CatalogueDep,
    registry: RegistryDep,
) -> HTMLResponse:
    """Owned cosmetics by slot, with equip buttons and a preview of the look."""
    refused = page_refusal(request, registry, principal, scopes.GAME_PLAY)
    if refused is not None:
        return refused
    player = await service.find_player(session, principal, mail_domain=settings.mail_domain)
    if player is None:
        return no_player_page(request, registry, principal)
    items = await service.inventory(session, catalogue=catalogue, player_id=player.id)
    worn = await service.cosmetics(session, catalogue=catalogue, player_id=player.id)
    return render(
        request,
        "inventory.html",
        {
            **page_context(registry, principal),
            "items": items,
            "cosmetics": worn,
            "avatar_colour": player.avatar_colour,
        },
    )


@router.post("/ui/inventory/{slot}", include_in_schema=False)
async def equip_from_page(
    request: Request,
    principal: PageUser,
    session: SessionDep,
    settings: SettingsDep,
    catalogue: CatalogueDep,
    slot: Annotated[Slot, Path()],
    item_id: Annotated[str, Form(max_length=64)] = "",
) -> RedirectResponse:
    """Equip (or, with no item, take off) from the inventory page."""
    await require_csrf(request)
    check_scopes(principal, (scopes.GAME_PLAY,))
    player = await service.require_player(session, principal, mail_domain=settings.mail_domain)
    if item_id:
        await service.equip(
            session, catalogue=catalogue, player_id=player.id, slot=slot, item_id=item_id
        )
    else:
        await service.unequip(session, player_id=player.id, slot=slot)
    await session.commit()
    return RedirectResponse(request.url_for("inventory_page"), status_code=303)
