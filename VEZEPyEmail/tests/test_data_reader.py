"""The DATA section read in pieces (services/smtp/data_reader.py) means what aiosmtpd's
line-by-line reading means: the same reply and the same message for any section, checked
against a plain aiosmtpd server over real connections."""

from __future__ import annotations

import asyncio
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from VEZEPyEmail.services.smtp.protocol import AUTH_LINE_LIMIT, VezeSMTP

SIZE_LIMIT = 6000


class Keep:
    """A handler that keeps what DATA delivered."""

    def __init__(self) -> None:
        self.content: bytes | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.content = bytes(envelope.original_content or b"")
        return "250 2.0.0 OK"


class _Reference(SMTP):
    """aiosmtpd's own DATA, with the reader limit VezeSMTP sets for long AUTH lines."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._stream_reader._limit = AUTH_LINE_LIMIT + 2  # type: ignore[attr-defined]


async def _exchange(port: int, section: bytes) -> tuple[str, str]:
    """Send one message with `section` as its DATA; the DATA reply and the next one's."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)

    async def reply() -> str:
        lines = []
        while True:
            line = await reader.readline()
            lines.append(line.decode(errors="replace"))
            if line[3:4] != b"-":
                return "".join(lines)

    try:
        await reply()  # greeting
        for command in (b"EHLO x.example", b"MAIL FROM:<a@b.example>", b"RCPT TO:<c@d.example>"):
            writer.write(command + b"\r\n")
            await reply()
        writer.write(b"DATA\r\n")
        assert (await reply()).startswith("354")
        writer.write(section + b".\r\n")
        answer = await reply()
        writer.write(b"NOOP\r\n")  # the session goes on
        return answer[:3], (await reply())[:3]
    finally:
        writer.close()


async def _both(section: bytes) -> tuple[Any, Any]:
    loop = asyncio.get_running_loop()
    ours, theirs = Keep(), Keep()
    common: dict[str, Any] = {"data_size_limit": SIZE_LIMIT, "decode_data": False}
    servers = [
        await loop.create_server(
            lambda: VezeSMTP(ours, max_errors=50, hostname="ours", **common), "127.0.0.1", 0
        ),
        await loop.create_server(
            lambda: _Reference(theirs, hostname="theirs", **common), "127.0.0.1", 0
        ),
    ]
    try:
        ports = [server.sockets[0].getsockname()[1] for server in servers]
        ours_reply = await _exchange(ports[0], section)
        theirs_reply = await _exchange(ports[1], section)
    finally:
        for server in servers:
            server.close()
            await server.wait_closed()
    return (ours_reply, ours.content), (theirs_reply, theirs.content)


#: Lines with what matters to the reading: dots (leading, alone, doubled), bare CR and LF, and
#: lengths around the 1,001-octet line limit.
_LINE = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\r\n", b"\n")),
    st.sampled_from([b"", b".", b"..", b"...x", b".\r", b"x.", b"\r", b"\n", b"\n.", b"a\rb"]),
    st.integers(min_value=990, max_value=1010).map(lambda n: b"y" * n),
    st.integers(min_value=990, max_value=1010).map(lambda n: b"." + b"z" * n),
    st.integers(min_value=12280, max_value=12300).map(lambda n: b"w" * n),
)
_SECTION = st.lists(_LINE, max_size=12).map(
    # A line that is exactly "." would end the section early; both servers agree on that
    # too, but the rest would then be read as commands.
    lambda lines: b"".join(line + b"\r\n" for line in lines if line != b".")
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(section=_SECTION, padding=st.sampled_from([0, 5990, 7000, 20000]))
def test_pieces_read_as_aiosmtpd_reads_lines(section: bytes, padding: int) -> None:
    # Padding in 100-octet lines pushes some sections past the size limit, others past the
    # reader's buffer (several pieces).
    filler = (b"p" * 98 + b"\r\n") * (padding // 100)
    ours, theirs = asyncio.run(_both(filler + section))
    assert ours == theirs


def test_a_message_of_many_pieces_is_read_whole() -> None:
    lines = [b".starts with a dot", b"x" * 998, b"", b"..", b"end"] * 3000
    section = b"".join(line + b"\r\n" for line in lines)
    ours, theirs = asyncio.run(_both(section))
    assert ours == theirs and ours[0] == ("552", "250")  # over SIZE_LIMIT: refused whole


_PATH_CHARS = st.sampled_from([*'ab.Z9+-_=@<> \t"()[]:,;\\', "ü", "\r"])


@settings(max_examples=400, deadline=None)
@given(
    local=st.text(_PATH_CHARS, max_size=12),
    domain=st.text(_PATH_CHARS, max_size=12),
    rest=st.text(_PATH_CHARS, max_size=12),
    lead=st.sampled_from(["", " ", "  "]),
)
def test_mail_and_rcpt_paths_read_as_aiosmtpd_reads_them(
    local: str, domain: str, rest: str, lead: str
) -> None:
    # VezeSMTP reads the plain `<local@domain> params` form itself (protocol._getaddr).
    ours = VezeSMTP(Keep(), max_errors=5)
    theirs = SMTP(Keep())
    for arg in (f"{lead}<{local}@{domain}>{rest}", f"<a.b+c@ex-ample.org>{rest}"):
        assert _outcome(ours._getaddr, arg) == _outcome(theirs._getaddr, arg)


def _outcome(read: Any, arg: str) -> object:
    try:
        return read(arg)
    except Exception as error:  # aiosmtpd's parser fails on some inputs: so must ours
        return type(error)
