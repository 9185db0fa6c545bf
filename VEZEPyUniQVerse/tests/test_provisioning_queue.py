"""The durable provisioning queue and its worker: claims, leases, back-off, wake-up, restarts.

Targets are a recording stand-in (`RecordingTarget`) mounted into the portal's service clients;
the end-to-end run against the real Email and Game apps is `tests/test_provisioning_retry.py`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import FastAPI
from joserfc.jws import extract_compact
from sqlalchemy import Connection, inspect

from VEZEPyCore.auth.tokens import KeySource, TokenVerifier
from VEZEPyCore.db.migrations import downgrade
from VEZEPyCore.errors import Unauthorized, UpstreamUnavailable
from VEZEPyCore.queue.backoff import Backoff
from VEZEPyUniQVerse.app.main import MIGRATIONS, create_app
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import Base
from VEZEPyUniQVerse.services.provisioning.queue import enqueue_account, provisioning_status
from VEZEPyUniQVerse.services.provisioning.tokens import service_token
from VEZEPyUniQVerse.services.provisioning.worker import INTERRUPTED, ProvisioningWorker
from VEZEPyUniQVerse.tests.helpers import bearer
from VEZEPyUniQVerse.tests.provisioning_helpers import (
    RecordingTarget,
    enqueue,
    fast_settings,
    tasks,
    wait_for,
)

Running = Callable[[FastAPI], AbstractAsyncContextManager[httpx.AsyncClient]]
Minter = Callable[..., str]


class FakeClock:
    """Starts now; `start()` again once the tasks are queued, so they are due."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def start(self) -> None:
        self.now = datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance_to(self, moment: datetime) -> None:
        self.now = max(self.now, moment)


def portal(settings: PortalSettings, **changes: Any) -> FastAPI:
    """A portal on the test database with fast retries (several may share the database)."""
    return create_app(fast_settings(settings, **changes))


def mount(app: FastAPI, target: RecordingTarget, label: str | None = None) -> None:
    stand_in = target.app(label)
    app.state.clients.mount("email", stand_in)
    app.state.clients.mount("game", stand_in)


def standalone_worker(
    app: FastAPI,
    call_target: Callable[[str, str, str], Any],
    *,
    clock: FakeClock | None = None,
    lease_seconds: float = 60.0,
    backoff: Backoff | None = None,
) -> ProvisioningWorker:
    """A worker on the app's database driven step by step by the test (no loop running)."""
    return ProvisioningWorker(
        sessionmaker=app.state.sessionmaker,
        call_target=call_target,
        backoff=backoff or Backoff(initial_seconds=1.0, max_seconds=300.0),
        lease_seconds=lease_seconds,
        poll_seconds=1.0,
        clock=clock or (lambda: datetime.now(UTC)),
        rng=random.Random(7),
    )


async def succeed(_target: str, _handle: str, _display_name: str) -> bool:
    return True


# -- the queue ---------------------------------------------------------------------------------


async def test_enqueue_adds_one_task_per_target_in_the_callers_transaction(
    portal_settings: PortalSettings, running: Running
) -> None:
    app = portal(portal_settings, provisioning_worker=False)
    async with running(app):
        async with app.state.sessionmaker() as session:
            await enqueue_account(session, handle="alice", display_name="Alice")
            await session.rollback()  # a sign-up that failed takes its tasks with it
        assert await tasks(app) == {}

        async with app.state.sessionmaker() as session:
            await enqueue_account(session, handle="Alice", display_name="Alice A.")
            assert await tasks(app) == {}  # nothing visible before the caller commits
            await session.commit()
        await enqueue(app, "alice")  # again: idempotent, the first display name stays

        rows = await tasks(app)
        async with app.state.sessionmaker() as session:
            status = await provisioning_status(session, handle="ALICE")
    assert sorted(rows) == [("alice", "email"), ("alice", "game")]
    assert {row.display_name for row in rows.values()} == {"Alice A."}
    assert [(entry.target, entry.status, entry.attempts, entry.last_error) for entry in status] == [
        ("email", "pending", 0, None),
        ("game", "pending", 0, None),
    ]
    assert all(entry.next_attempt_at is not None for entry in status)


async def test_the_worker_wakes_at_once_when_an_account_is_queued(
    portal_settings: PortalSettings, running: Running
) -> None:
    target = RecordingTarget()
    # A poll interval far beyond the wait below: only the wake-up can make this pass.
    app = portal(portal_settings, provisioning_poll_seconds=300.0)
    async with running(app):
        mount(app, target)
        worker = app.state.provisioning_worker

        async def first_pass_over() -> bool:
            return bool(worker.passes >= 1)

        # The worker looked, found nothing and went to sleep: from here only a wake-up helps.
        await wait_for(first_pass_over, what="the worker's first pass")
        await enqueue(app, "alice")

        async def all_done() -> bool:
            rows = await tasks(app, "alice")
            return len(rows) == 2 and all(row.status == "done" for row in rows.values())

        await wait_for(all_done, what="both tasks done")  # far below the 300 s poll
        async with app.state.sessionmaker() as session:
            status = await provisioning_status(session, handle="alice")
    assert [(entry.target, entry.status, entry.attempts) for entry in status] == [
        ("email", "done", 1),
        ("game", "done", 1),
    ]
    assert all(entry.next_attempt_at is None and entry.last_error is None for entry in status)
    assert target.per_task() == {("email", "alice"): 1, ("game", "alice"): 1}


# -- back-off ----------------------------------------------------------------------------------


def test_backoff_doubles_with_bounded_jitter_up_to_the_maximum() -> None:
    backoff = Backoff(initial_seconds=2.0, max_seconds=300.0)
    rng = random.Random(1)
    delays = [backoff.delay(attempts, rng) for attempts in range(1, 12)]
    for attempts, delay in enumerate(delays, start=1):
        nominal = 2.0 * 2 ** (attempts - 1)
        assert min(300.0, nominal * 0.9) <= delay <= min(300.0, nominal * 1.1)
    uncapped = [delay for delay in delays if delay < 300.0 * 0.9]
    assert uncapped == sorted(uncapped) and len(set(uncapped)) == len(uncapped)
    assert len(uncapped) == 7  # 2, 4, ..., 128 s; from 256 s on the cap takes over
    assert 270.0 <= backoff.delay(10_000, rng) <= 300.0  # no overflow for a long outage


async def test_failures_are_recorded_and_retried_with_growing_backoff(
    portal_settings: PortalSettings, running: Running
) -> None:
    app = portal(portal_settings, provisioning_worker=False)
    clock = FakeClock()
    email_calls = 0

    async def email_down_four_times(target: str, _handle: str, _display_name: str) -> bool:
        nonlocal email_calls
        if target == "game":
            return True
        email_calls += 1
        if email_calls <= 3:
            raise UpstreamUnavailable("the email service is unreachable (ConnectError)")
        if email_calls == 4:
            raise RuntimeError("boom")  # a bug in a target call must not stop the worker
        return True

    gaps: list[float] = []
    errors: list[str | None] = []
    async with running(app):
        worker = standalone_worker(app, email_down_four_times, clock=clock)
        await enqueue(app, "alice")
        clock.start()
        assert await worker.process_due() == 2
        async with app.state.sessionmaker() as session:
            status = {
                entry.target: entry for entry in await provisioning_status(session, handle="alice")
            }
        assert (status["game"].status, status["email"].status) == ("done", "failed-retrying")

        for attempt in range(1, 5):
            email = (await tasks(app, "alice"))[("alice", "email")]
            assert (email.status, email.attempts, email.lease_token) == ("pending", attempt, None)
            gaps.append((email.next_attempt_at - clock.now).total_seconds())
            errors.append(email.last_error)
            assert await worker.process_due() == 0  # not due yet
            clock.advance_to(email.next_attempt_at)
            assert await worker.process_due() == 1
        email = (await tasks(app, "alice"))[("alice", "email")]
    assert (email.status, email.attempts, email.last_error) == ("done", 5, None)
    assert errors == ["the email service is unreachable (ConnectError)"] * 3 + [
        "RuntimeError: boom"
    ]
    for attempt, gap in enumerate(gaps, start=1):
        assert 0.9 * 2 ** (attempt - 1) <= gap <= 1.1 * 2 ** (attempt - 1)
    assert gaps == sorted(gaps)


# -- several workers, leases, restarts ---------------------------------------------------------


async def test_two_portals_claiming_at_once_take_disjoint_tasks(
    portal_settings: PortalSettings, running: Running
) -> None:
    first = portal(portal_settings, provisioning_worker=False)
    second = portal(portal_settings, provisioning_worker=False)  # same database, own engine
    handles = [f"user{number:02d}" for number in range(20)]
    async with running(first), running(second):
        await enqueue(first, *handles)
        workers = [standalone_worker(first, succeed), standalone_worker(second, succeed)]
        claimed: list[list[int]] = [[], []]
        while True:
            now = datetime.now(UTC)
            batches = await asyncio.gather(*(worker.claim_due(now=now) for worker in workers))
            if not any(batches):
                break
            for mine, batch in zip(claimed, batches, strict=True):
                mine.extend(task.id for task in batch)
        rows = await tasks(first)
    assert set(claimed[0]).isdisjoint(claimed[1])
    assert sorted(claimed[0] + claimed[1]) == sorted(row.id for row in rows.values())
    assert len(rows) == 40
    assert all(row.attempts == 1 and row.lease_token is not None for row in rows.values())


async def test_two_running_portals_provision_every_task_exactly_once(
    portal_settings: PortalSettings, running: Running
) -> None:
    target = RecordingTarget()
    first = portal(portal_settings, provisioning_poll_seconds=0.02)
    second = portal(portal_settings, provisioning_poll_seconds=0.02)
    handles = [f"user{number:02d}" for number in range(24)]
    async with running(first), running(second):
        mount(first, target, "first")
        mount(second, target, "second")
        # Sign-ups arrive at both portals, interleaved, so both workers are busy at once.
        for index in range(0, len(handles), 4):
            app = first if index % 8 == 0 else second
            await enqueue(app, *handles[index : index + 4])

        async def all_done() -> bool:
            rows = await tasks(first)
            return len(rows) == 48 and all(row.status == "done" for row in rows.values())

        await wait_for(all_done, what="48 tasks done")
        rows = await tasks(first)
    expected = {(kind, handle): 1 for handle in handles for kind in ("email", "game")}
    assert dict(target.per_task()) == expected
    assert all(row.attempts == 1 for row in rows.values())


async def test_a_task_whose_worker_died_is_retried_when_its_lease_runs_out(
    portal_settings: PortalSettings, running: Running
) -> None:
    app = portal(portal_settings, provisioning_worker=False)
    clock = FakeClock()
    calls: list[tuple[str, str]] = []

    async def record(target: str, handle: str, _display_name: str) -> bool:
        calls.append((target, handle))
        return True

    async def fail(_target: str, _handle: str, _display_name: str) -> bool:
        raise UpstreamUnavailable("too late")

    async with running(app):
        died = standalone_worker(app, fail, clock=clock, lease_seconds=60)
        survivor = standalone_worker(app, record, clock=clock, lease_seconds=60)
        await enqueue(app, "alice")
        clock.start()
        lost = await died.claim_due()  # ... and the process dies before calling out
        assert len(lost) == 2

        clock.now += timedelta(seconds=59)
        assert await survivor.process_due() == 0  # still leased
        clock.now += timedelta(seconds=2)
        assert await survivor.process_due() == 2

        # The dead worker's call finally fails: it no longer holds the lease, records nothing.
        for task in lost:
            await died.process(task)
        rows = await tasks(app, "alice")
    assert sorted(calls) == [("email", "alice"), ("game", "alice")]
    assert {(row.status, row.attempts, row.last_error) for row in rows.values()} == {
        ("done", 2, None)
    }


async def test_a_restart_after_a_crash_finishes_the_task_after_the_lease(
    portal_settings: PortalSettings, running: Running
) -> None:
    target = RecordingTarget()
    before = portal(portal_settings, provisioning_worker=False)
    async with running(before):
        await enqueue(before, "alice")
        crashed = standalone_worker(before, succeed, lease_seconds=0.3)
        lost = await crashed.claim_due()
        lease_ends = min(row.next_attempt_at for row in (await tasks(before)).values())
    assert len(lost) == 2

    after = portal(portal_settings)  # the restarted portal, same database
    async with running(after):
        mount(after, target)

        async def all_done() -> bool:
            rows = await tasks(after, "alice")
            return all(row.status == "done" for row in rows.values())

        await wait_for(all_done, what="the restarted worker to finish")
        rows = await tasks(after, "alice")
    assert target.per_task() == {("email", "alice"): 1, ("game", "alice"): 1}
    assert all(row.attempts == 2 and row.updated_at >= lease_ends for row in rows.values())


async def test_stopping_mid_call_hands_the_task_back_and_the_next_start_finishes_it(
    portal_settings: PortalSettings, running: Running
) -> None:
    target = RecordingTarget(hold=asyncio.Event())  # calls hang until released
    first = portal(portal_settings)
    async with running(first):
        mount(first, target)
        await enqueue(first, "alice")
        await wait_for(lambda: _both_called(target), what="both calls in flight")
    # The lifespan has ended (the worker stopped) while both calls were still waiting.
    stopped_at = datetime.now(UTC)
    rows = await _rows_of(portal_settings, running)
    assert {(row.status, row.attempts, row.lease_token, row.last_error) for row in rows} == {
        ("pending", 1, None, INTERRUPTED)
    }
    assert all(row.next_attempt_at <= stopped_at for row in rows)  # due again at once

    assert target.hold is not None
    target.hold.set()
    second = portal(portal_settings)
    async with running(second):
        mount(second, target)

        async def all_done() -> bool:
            found = await tasks(second, "alice")
            return all(row.status == "done" for row in found.values())

        await wait_for(all_done, what="the restarted worker to finish")
        done = await tasks(second, "alice")
    assert {(row.attempts, row.last_error) for row in done.values()} == {(2, None)}
    # The interrupted call may or may not have reached the target: it is simply repeated.
    assert target.per_task() == {("email", "alice"): 2, ("game", "alice"): 2}


async def _both_called(target: RecordingTarget) -> bool:
    return len(target.calls) >= 2


async def _rows_of(settings: PortalSettings, running: Running) -> list[Any]:
    app = portal(settings, provisioning_worker=False)
    async with running(app):
        return list((await tasks(app, "alice")).values())


# -- around the worker -------------------------------------------------------------------------


async def test_readiness_reports_the_worker(
    portal_settings: PortalSettings, running: Running
) -> None:
    app = portal(portal_settings)
    async with running(app) as client:
        ready = await client.get("/ready")
        await app.state.provisioning_worker.stop()
        stopped = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["provisioning_worker"] == "ok"
    assert stopped.status_code == 503
    assert stopped.json()["checks"]["provisioning_worker"] == "error: RuntimeError"


async def test_provision_endpoint_and_the_queue_agree(
    portal_settings: PortalSettings, running: Running, mint: Minter
) -> None:
    target = RecordingTarget()
    app = portal(portal_settings)
    provisioner = bearer(mint("svc:signup", audience="veze-portal", scopes=("portal.provision",)))
    async with running(app) as client:
        mount(app, target)
        response = await client.post("/provision/alice", headers=provisioner)
        await enqueue(app, "alice")

        async def all_done() -> bool:
            rows = await tasks(app, "alice")
            return len(rows) == 2 and all(row.status == "done" for row in rows.values())

        await wait_for(all_done, what="the queued tasks")
    assert response.status_code == 201, response.text
    assert response.json()["created"] is True
    # The queue's mailbox call found the mailbox there already (200): nothing was duplicated.
    assert target.per_task() == {("email", "alice"): 2, ("game", "alice"): 1}
    assert target.created == {("email", "alice"), ("game", "alice")}


def _drift(connection: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def _tables(connection: Connection) -> list[str]:
    return inspect(connection).get_table_names()


def _mentions_tasks(difference: Any) -> bool:
    return "provisioning_tasks" in repr(difference)


async def test_the_migration_matches_the_model_and_downgrades(
    portal_settings: PortalSettings, running: Running
) -> None:
    app = portal(portal_settings, provisioning_worker=False)
    async with running(app):
        async with app.state.engine.connect() as connection:
            drift = [item for item in await connection.run_sync(_drift) if _mentions_tasks(item)]
        await asyncio.to_thread(downgrade, MIGRATIONS, portal_settings.db_url, "0002")
        async with app.state.engine.connect() as connection:
            tables = await connection.run_sync(_tables)
    assert drift == []
    assert "provisioning_tasks" not in tables
    assert "provisioning" in tables  # the skeleton's table is kept


@pytest.mark.parametrize("target", ["email", "game"])
async def test_service_tokens_are_signed_with_the_portals_key_for_the_target(
    portal_settings: PortalSettings, running: Running, target: str
) -> None:
    app = portal(portal_settings, provisioning_worker=False)
    audience = {"email": "veze-email", "game": "veze-game"}[target]
    async with running(app):
        token = await service_token(app.state, audience=audience, scopes=[f"{target}.admin"])
        keys_only = _verifier(
            portal_settings, audience, with_secret=False, jwks=app.state.oidc_keys
        )
        principal = await keys_only.verify(token)  # no HS256 secret: only the JWKS key fits
        with pytest.raises(Unauthorized):
            await _verifier(portal_settings, "veze-portal", jwks=app.state.oidc_keys).verify(token)
    assert extract_compact(token.encode()).protected["alg"] != "HS256"
    assert principal.scopes == {f"{target}.admin"}
    assert principal.subject == "svc:portal"


async def test_service_tokens_fall_back_to_hs256_without_a_signing_key(
    portal_settings: PortalSettings,
) -> None:
    state = SimpleNamespace(settings=portal_settings)  # a portal without the OIDC provider
    token = await service_token(state, audience="veze-email", scopes=["email.admin"])
    principal = await _verifier(portal_settings, "veze-email").verify(token)
    assert extract_compact(token.encode()).protected["alg"] == "HS256"
    assert principal.scopes == {"email.admin"}


def _verifier(
    settings: PortalSettings,
    audience: str,
    *,
    with_secret: bool = True,
    jwks: KeySource | None = None,
) -> TokenVerifier:
    return TokenVerifier(
        issuer=settings.jwt_iss,
        audience=audience,
        secret=settings.hs256_secret() if with_secret else None,
        jwks=jwks,
        demo=False,
        mail_domain=settings.mail_domain,
    )
