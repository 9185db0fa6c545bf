"""The SMTP protocol object: aiosmtpd's `SMTP` with this service's limits and reply codes.

aiosmtpd answers some limits with bare basic codes; RFC 3463 / RFC 5321 section 4.2.4 want
enhanced status codes, so its fixed replies are rewritten on the way out. Every 4xx/5xx reply
counts as an error and is logged with the client's address; past `max_errors` the session
ends with 421 (RFC 5321 section 3.8). A `ConnectionGate` shared by the listeners of one
process refuses a client IP's sessions beyond its limit with 421 before the greeting.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import warnings
from collections import Counter
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, syntax

from VEZEPyEmail.services.metrics import EmailMetrics
from VEZEPyEmail.services.smtp.data_reader import read_data_section

log = logging.getLogger(__name__)

AUTH_LINE_LIMIT = 12288

#: aiosmtpd's own replies (prefix match) and the enhanced-status form this server sends.
_REWRITES: tuple[tuple[str, str], ...] = (
    ("552 Error: message size exceeds", "552 5.3.4 Message size exceeds fixed maximum size"),
    ("552 Error: Too much mail data", "552 5.3.4 Message size exceeds fixed maximum size"),
    ("500 Line too long", "500 5.5.2 Line too long (RFC 5321 section 4.5.3.1.6)"),
    ("500 Command line too long", "500 5.5.2 Command line too long"),
    ("530 Must issue a STARTTLS command first", "530 5.7.0 Must issue a STARTTLS command first"),
    ("503 Error: need MAIL command", "503 5.5.1 Need MAIL command"),
    ("503 Error: need RCPT command", "503 5.5.1 Need RCPT command"),
    ("503 Error: send HELO first", "503 5.5.1 Send HELO first"),
    ("503 Error: send EHLO first", "503 5.5.1 Send EHLO first"),
    ("503 Error: nested MAIL command", "503 5.5.1 Nested MAIL command"),
    ("500 Error: bad syntax", "500 5.5.2 Bad syntax"),
    # aiosmtpd ends the session after its fifth unknown command; say so the RFC 5321 way.
    (
        "502 5.5.1 Too many unrecognized commands",
        "421 4.7.0 Too many unrecognized commands, closing connection",
    ),
)
#: Commands that move no mail; each is limited per session (Postfix's junk commands).
JUNK_COMMANDS = ("NOOP", "RSET", "VRFY", "EXPN", "HELP", "HELO", "EHLO")
#: Every other command: unlimited in effect (mail transactions are bounded by the timeout).
UNLIMITED = 10**9


#: `<local@domain>` with a dot-atom local part and a dot-atom domain (RFC 5321 section 4.1.2),
#: then the parameters: the form nearly every client sends.
_PLAIN_PATH = re.compile(
    r"\s*<([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
    r"@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
    # Parameters: printable words after single spaces (no comments, which aiosmtpd drops).
    r"((?: [!-'*-~]+)*)"
)


def command_limits(junk_limit: int) -> dict[str, int]:
    """aiosmtpd's `command_call_limit`: past it, `421 4.7.0 <CMD> sent too many times`."""
    return {"*": UNLIMITED, **dict.fromkeys(JUNK_COMMANDS, junk_limit)}


class ConnectionGate:
    """Open sessions per client IP, shared by one process's listeners."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: Counter[str] = Counter()

    def admit(self, ip: str) -> bool:
        if self.open[ip] >= self.limit:
            return False
        self.open[ip] += 1
        return True

    def release(self, ip: str) -> None:
        self.open[ip] -= 1
        if self.open[ip] <= 0:
            del self.open[ip]


def enhanced(status: str) -> str:
    for prefix, replacement in _REWRITES:
        if status.startswith(prefix):
            return replacement
    return status


_PROTOCOL_NAMES: dict[str, list[str]] = {}


def protocol_names(cls: type) -> list[str]:
    """The names aiosmtpd looks for on a session or its handler: commands (smtp_*), AUTH
    mechanisms (auth_*) and hooks (handle_*); they are fixed per class."""
    key = f"{cls.__module__}.{cls.__qualname__}"
    names = _PROTOCOL_NAMES.get(key)
    if names is None:
        names = _PROTOCOL_NAMES[key] = sorted(
            name for name in dir(cls) if name.startswith(("smtp_", "auth_", "handle_"))
        )
    return names


class VezeSMTP(SMTP):
    """One SMTP session with an error budget (RFC 5321 section 4.5.3 limits)."""

    def __dir__(self) -> list[str]:
        # aiosmtpd finds a session's commands (smtp_*) and AUTH mechanisms (auth_*) by
        # scanning dir(self) and reading every attribute, properties included, once per
        # connection: up to a few milliseconds on a busy machine, and a mail client opens a
        # connection per message. Only those names matter to it; they are fixed per class.
        return protocol_names(type(self))

    def __init__(
        self,
        handler: Any,
        *,
        max_errors: int,
        listener: str = "mx",
        metrics: EmailMetrics | None = None,
        gate: ConnectionGate | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._listener = listener
        self._gate = gate
        self._admitted_ip: str | None = None
        self._ending = False
        self._metrics = metrics
        self._max_errors = max_errors
        self._errors = 0
        self._reply_lines: list[str] = []
        # aiosmtpd keeps its command limits in a class-level dict it clears per instance; this
        # session gets its own. RFC 4954 section 4: an AUTH line (a bearer token's initial
        # response) may be 12288 octets, far above the 512 of RFC 5321 section 4.5.3.1.4.
        self.command_size_limits = collections.defaultdict(
            lambda: SMTP.command_size_limit, {"AUTH": AUTH_LINE_LIMIT}
        )
        # The reader must hold such a line; DATA lines are still held to line_length_limit
        # (RFC 5321 section 4.5.3.1.6) by aiosmtpd's own check.
        self._stream_reader._limit = AUTH_LINE_LIMIT + 2  # type: ignore[attr-defined]

    async def push(self, status: AnyStr) -> None:
        if self._ending:
            # After a 421 the session says nothing more, whatever was pipelined behind it.
            raise asyncio.CancelledError
        text = status.decode("utf-8", "replace") if isinstance(status, bytes) else str(status)
        if text[3:4] == "-":
            # A line of a multi-line reply (EHLO's): sent with the last line, in one write
            # instead of a system call per line.
            self._reply_lines.append(text)
            return
        if self._reply_lines:
            text = "\r\n".join([*self._reply_lines, text])
            self._reply_lines.clear()
        text = enhanced(text)
        await super().push(text)
        if self._metrics is not None:
            self._metrics.reply(self._listener, text)
        code = text[:3]
        if code.isdigit() and code[0] in "45":
            log.info("SMTP %s %r refused: %s", self._listener, self.session_peer, text[:200])
        if code == "421":
            # RFC 5321 section 3.8: 421 ends the session. Commands the client pipelined
            # behind it are already buffered; none of them may run after this reply.
            self._end_session()
        elif code.isdigit() and code[0] in "45":
            self._errors += 1
            if self._errors >= self._max_errors and self.transport is not None:
                log.warning("SMTP %s %r: too many errors", self._listener, self.session_peer)
                await super().push("421 4.7.0 Too many errors, closing connection")
                self._end_session()

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        # aiosmtpd parses every MAIL and RCPT path with the email package's header parser
        # (and defines a class per call), about a tenth of a listener's CPU under load. The
        # plain form gives the same answer read directly; anything else goes to aiosmtpd.
        plain = _PLAIN_PATH.fullmatch(arg)
        if plain is None:
            return super()._getaddr(arg)
        local, domain, rest = plain.group(1), plain.group(2), plain.group(3)[1:]
        if self.local_part_limit and len(local) > self.local_part_limit:
            return None, None
        return f"{local}@{domain}", rest

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        """aiosmtpd's DATA, reading the section in large pieces (data_reader.py)."""
        if await self.check_helo_needed():
            return
        if await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            section = await read_data_section(
                self._reader,
                size_limit=self.data_size_limit,
                line_limit=self.line_length_limit,
                reader_limit=self._reader._limit,  # type: ignore[attr-defined]
            )
        except asyncio.CancelledError:
            log.info("SMTP %s %r: connection lost during DATA", self._listener, self.session_peer)
            self._writer.close()
            raise
        except asyncio.IncompleteReadError:
            return  # the client went away mid-message: nothing was accepted
        if section.content is None:
            self._set_post_data_state()  # type: ignore[no-untyped-call]
            if section.refusal == "too_long":
                await self.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            else:
                await self.push("552 Error: Too much mail data")
            return
        self.envelope.content = section.content
        self.envelope.original_content = section.content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()  # type: ignore[no-untyped-call]
        await self.push(status)

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        if command == "DATA":
            # The whole message has arrived within the timeout; storing it gets a full
            # timeout of its own, so a slow disk never cuts a session whose 250 is pending.
            self._reset_timeout()
        return await super()._call_handler_hook(command, *args)

    def _end_session(self) -> None:
        self._ending = True
        if self.transport is not None:
            self.transport.close()
        task = self._handler_coroutine
        if task is not None and not task.done():
            task.cancel()

    def connection_made(self, transport: Any) -> None:
        # aiosmtpd calls this again after STARTTLS on the same session: count the first only.
        new_session = self._original_transport is None
        super().connection_made(transport)
        if not new_session:
            return
        if self._metrics is not None:
            self._metrics.session_opened(self._listener)
        if self._gate is not None:
            peer = transport.get_extra_info("peername")
            ip = str(peer[0]) if isinstance(peer, tuple) else str(peer)
            if not self._gate.admit(ip):
                # Before the greeting (RFC 5321 section 3.1 allows 421 in its place).
                log.warning("SMTP %s %s: over %d sessions", self._listener, ip, self._gate.limit)
                if self._metrics is not None:
                    self._metrics.reply(self._listener, "421 4.7.0 Too many connections")
                transport.write(b"421 4.7.0 Too many connections from your address\r\n")
                self._end_session()
                return
            self._admitted_ip = ip

    def connection_lost(self, error: Exception | None) -> None:
        try:
            super().connection_lost(error)
        finally:
            if self._admitted_ip is not None and self._gate is not None:
                self._gate.release(self._admitted_ip)
                self._admitted_ip = None
            if self._metrics is not None:
                self._metrics.session_closed(self._listener)

    def _timeout_cb(self) -> None:
        # RFC 5321 section 4.5.3.2: the server may end an idle session; say why first (421).
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"421 4.4.2 Idle timeout, closing connection\r\n")  # type: ignore[attr-defined]
        super()._timeout_cb()  # type: ignore[no-untyped-call]

    @property
    def session_peer(self) -> Any:
        return self.session.peer if self.session is not None else None


class ImplicitTlsSMTP(VezeSMTP):
    """SMTPS (RFC 8314 section 3): the connection is TLS from its first byte."""

    def __init__(self, handler: Any, *, max_errors: int, **kwargs: Any) -> None:
        kwargs.setdefault("listener", "smtps")
        # aiosmtpd only knows STARTTLS as TLS and warns about AUTH "without" it; here the
        # whole connection is TLS, so the warning does not apply.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
            super().__init__(handler, max_errors=max_errors, **kwargs)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        if self.session is not None and self.session.ssl is None:
            cipher = transport.get_extra_info("cipher")
            self.session.ssl = {"cipher": cipher, "implicit": True}
