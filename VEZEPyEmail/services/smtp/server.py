"""The three SMTP listeners on one host, run inside the Email service's event loop.

- MX (RFC 5321): `smtp_mx_port`, no AUTH, local recipients only.
- Submission (RFC 6409): `smtp_submission_port`, STARTTLS (RFC 3207) before AUTH (RFC 4954).
- SMTPS (RFC 8314): `smtps_port`, implicit TLS, the submission rules.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from VEZEPyCore.web.workers import configured_workers
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyEmail.services.delivery.group_commit import GroupCommitter
from VEZEPyEmail.services.intake.deliverer import IntakeDeliverer
from VEZEPyEmail.services.intake.journal import IntakeJournal
from VEZEPyEmail.services.metrics import email_metrics
from VEZEPyEmail.services.smtp.auth import SmtpAuthenticator
from VEZEPyEmail.services.smtp.handlers import MxHandler, SubmissionHandler
from VEZEPyEmail.services.smtp.portal import PortalPasswordClient
from VEZEPyEmail.services.smtp.protocol import (
    ConnectionGate,
    ImplicitTlsSMTP,
    VezeSMTP,
    command_limits,
)
from VEZEPyEmail.services.smtp.tls import server_context

log = logging.getLogger(__name__)

#: aiosmtpd's greeting names the software; this one names only the service.
IDENT = "VEZE ESMTP"


class SmtpListeners:
    """The MX, submission and SMTPS servers; `start()` binds them, `stop()` closes them."""

    def __init__(
        self,
        *,
        state: Any,
        settings: EmailSettings,
        authenticator: SmtpAuthenticator,
        reuse_port: bool = False,
    ) -> None:
        self.settings = settings
        self.reuse_port = reuse_port
        self.metrics = email_metrics(state)
        self.mx_handler = MxHandler(state=state, settings=settings)
        self.submission_handler = SubmissionHandler(
            state=state, settings=settings, authenticator=authenticator
        )
        self.servers: dict[str, asyncio.base_events.Server] = {}
        self._tls: ssl.SSLContext | None = None
        #: Live sessions, closed on stop: Server.close() alone leaves them running.
        self._sessions: weakref.WeakSet[VezeSMTP] = weakref.WeakSet()
        #: One budget of open sessions per client IP across the three listeners (slowloris).
        self.gate = ConnectionGate(settings.smtp_max_connections_per_ip)

    def _track(self, protocol: VezeSMTP) -> VezeSMTP:
        self._sessions.add(protocol)
        return protocol

    def _common(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "hostname": settings.smtp_hostname,
            "ident": IDENT,
            # RFC 1870 SIZE is advertised from this and enforced while DATA is read.
            "data_size_limit": settings.max_message_bytes,
            # RFC 6531 SMTPUTF8; 8BITMIME (RFC 6152) comes with decode_data=False.
            "enable_SMTPUTF8": True,
            "decode_data": False,
            # RFC 5321 section 4.5.3.2.7: the server waits at least 5 minutes for a command.
            # It restarts only when a whole command has arrived, so a client dribbling bytes
            # is cut off after it, and DATA must be complete within it too.
            "timeout": settings.smtp_session_timeout_seconds,
            "max_errors": settings.smtp_max_errors,
            # A flood of NOOP/RSET/... (pipelined or dribbled to stay connected) ends in 421.
            "command_call_limit": command_limits(settings.smtp_junk_command_limit),
            "gate": self.gate,
            "metrics": self.metrics,
        }

    def _mx_factory(self) -> VezeSMTP:
        return self._track(VezeSMTP(self.mx_handler, listener="mx", **self._common()))

    def _submission_factory(self) -> VezeSMTP:
        return self._track(
            VezeSMTP(
                self.submission_handler,
                listener="submission",
                tls_context=self._tls,
                require_starttls=True,  # RFC 3207 section 4: 530 before STARTTLS
                auth_required=True,
                auth_require_tls=True,
                **self._common(),
            )
        )

    def _smtps_factory(self) -> VezeSMTP:
        return self._track(
            ImplicitTlsSMTP(
                self.submission_handler,
                listener="smtps",
                auth_required=True,
                # The transport is TLS already; aiosmtpd only knows STARTTLS as TLS.
                auth_require_tls=False,
                **self._common(),
            )
        )

    async def start(self) -> None:
        settings = self.settings
        self._tls = await asyncio.to_thread(server_context, settings)
        loop = asyncio.get_running_loop()
        plans: list[tuple[str, int, Callable[[], VezeSMTP], ssl.SSLContext | None]] = [
            ("mx", settings.smtp_mx_port, self._mx_factory, None),
            ("submission", settings.smtp_submission_port, self._submission_factory, None),
            ("smtps", settings.smtps_port, self._smtps_factory, self._tls),
        ]
        try:
            for name, port, factory, context in plans:
                self.servers[name] = await loop.create_server(
                    factory,
                    host=settings.smtp_host,
                    port=port,
                    ssl=context,
                    # Several listener processes share each port (smtp_main); off otherwise,
                    # so a second server on the same port fails instead of splitting traffic.
                    reuse_port=self.reuse_port or None,
                    # A client that stalls the SMTPS handshake is dropped like an idle one.
                    ssl_handshake_timeout=(
                        min(60.0, settings.smtp_session_timeout_seconds) if context else None
                    ),
                )
                log.info("SMTP %s listening on %s:%s", name, settings.smtp_host, self.port(name))
        except BaseException:
            await self.stop()
            raise

    def open_sessions(self) -> int:
        """SMTP sessions open now, on all three listeners."""
        return len(self._sessions)

    def port(self, name: str) -> int:
        sockets = self.servers[name].sockets
        port: int = sockets[0].getsockname()[1]
        return port

    async def stop(self) -> None:
        servers, self.servers = self.servers, {}
        for server in servers.values():
            server.close()
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        for server in servers.values():
            await server.wait_closed()

    async def check(self) -> None:
        """Ready check: every listener is bound and serving."""
        if not self.servers or not all(s.is_serving() for s in self.servers.values()):
            raise RuntimeError("SMTP listeners are not serving")


@asynccontextmanager
async def smtp_listeners(app: FastAPI) -> AsyncIterator[None]:
    """Start-up hook: run the listeners when `smtp_enabled`, stop them on shutdown."""
    settings: EmailSettings = app.state.settings
    # With smtp_separate_process the listeners belong to smtp_main, which marks its own app.
    in_smtp_main = bool(getattr(app.state, "smtp_main", False))
    if not settings.smtp_enabled or (settings.smtp_separate_process and not in_smtp_main):
        yield
        return
    portal = PortalPasswordClient(settings=settings, clients=app.state.clients)
    authenticator = SmtpAuthenticator(
        settings=settings, verifier=app.state.verifier, passwords=portal
    )
    listeners = SmtpListeners(
        state=app.state,
        settings=settings,
        authenticator=authenticator,
        # Several processes bind the same ports: smtp_main's listeners, or each uvicorn worker
        # of a web process that runs its own listeners (WEB_CONCURRENCY above 1).
        reuse_port=(in_smtp_main and settings.smtp_processes > 1) or configured_workers() > 1,
    )
    # Deliveries of the process share commits (group_commit.py); the MX records what it
    # accepts in the intake journal, and the deliverer files it from there (ADR 0023).
    committer = GroupCommitter(app.state)
    journal = IntakeJournal(app.state, max_backlog=settings.intake_max_backlog)
    deliverer = IntakeDeliverer(
        app.state,
        journal=journal,
        committer=committer,
        max_delay=settings.intake_max_delay_seconds,
        lease_seconds=settings.intake_lease_seconds,
        max_attempts=settings.intake_max_attempts,
        open_sessions=listeners.open_sessions,
    )
    committer.start()
    journal.start()
    app.state.group_commit = committer
    app.state.smtp_intake = journal
    app.state.smtp_deliverer = deliverer
    try:
        await listeners.start()
        deliverer.start()
        app.state.smtp = listeners
        app.state.ready_checks["smtp"] = listeners.check
        yield
    finally:
        app.state.ready_checks.pop("smtp", None)
        await listeners.stop()
        # The deliverer first (its filings need the committer), the journal with the
        # listeners' last sessions answered.
        await deliverer.stop()
        await journal.stop()
        app.state.smtp_deliverer = None
        app.state.smtp_intake = None
        app.state.group_commit = None
        await committer.stop()
        await authenticator.close()
