from __future__ import annotations

from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.services.audit.service import list_events, record
from VEZEPyUniQVerse.tests.accounts_helpers import portal


async def test_events_are_recorded_with_the_callers_commit(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        async with app.db() as db:
            record(db, actor="Alice", action="login.success", ip="192.0.2.1")
            await db.rollback()  # an event is kept only with what it describes
        async with app.db() as db:
            record(
                db,
                actor="alice",
                action="login.success",
                target="alice",
                ip="192.0.2.1",
                detail={"second_factor": "totp"},
            )
            record(db, actor="", action="login.failure", outcome="denied", target="x" * 500)
            await db.commit()
        events = await app.audit()

    assert [(e.actor, e.action, e.outcome) for e in events] == [
        ("alice", "login.success", "ok"),
        ("anonymous", "login.failure", "denied"),
    ]
    assert events[0].detail == {"second_factor": "totp"}
    assert events[0].ip == "192.0.2.1"
    assert events[0].at.tzinfo is not None
    assert len(events[1].target) == 200


async def test_events_are_listed_newest_first_filtered_and_paginated(
    portal_settings: PortalSettings,
) -> None:
    async with portal(portal_settings) as app:
        async with app.db() as db:
            for number in range(7):
                record(db, actor=f"user{number % 2}", action=f"login.{number}")
            record(db, actor="admin", action="admin.disable", target="user1")
            record(db, actor="admin", action="admin%disable")
            await db.commit()
        async with app.db() as db:
            first = await list_events(db, per_page=3)
            last = await list_events(db, per_page=3, page=3)
            by_actor = await list_events(db, actor="USER1")
            by_action = await list_events(db, action="admin.")
            wildcard = await list_events(db, action="admin%")
            too_far = await list_events(db, per_page=3, page=10)

    assert [e.action for e in first.events] == ["admin%disable", "admin.disable", "login.6"]
    assert (first.total, first.pages) == (9, 3)
    assert [e.action for e in last.events] == ["login.2", "login.1", "login.0"]
    assert [e.action for e in by_actor.events] == ["login.5", "login.3", "login.1"]
    assert [e.action for e in by_action.events] == ["admin.disable"]
    assert [e.action for e in wildcard.events] == ["admin%disable"]  # % is not a wildcard
    assert too_far.events == []
