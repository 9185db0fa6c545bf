"""Run a compiled script against one message: which copies to store, and what else to do.

RFC 5228 section 2.10.2: the implicit keep files the message in the default folder unless an
executed action cancels it (fileinto, redirect, discard); `keep` files it there explicitly.
Deviation kept on purpose: flags are a property of the delivered message, not of the point
in the script where an action ran, so `addflag` anywhere in the executed path flags every
copy stored (RFC 5232 applies the flags current at each fileinto/keep). A rule such as
`fileinto "Archive"; addflag "\\Flagged";` then does what its author meant.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from email.utils import getaddresses

from VEZEPyEmail.services.messages import mime
from VEZEPyEmail.services.sieve import nodes
from VEZEPyEmail.services.sieve.matching import Budget, matches

#: Work units one delivery may spend evaluating one script (see matching.Budget).
DEFAULT_BUDGET = 2_000_000
#: RFC 5228 section 10: limit how many times one message may be redirected.
MAX_REDIRECTS = 4
MAX_HEADER_VALUE = 16 * 1024
MAX_HEADERS = 500


@dataclass(frozen=True)
class MessageView:
    """What tests may look at: decoded header values (RFC 2047) by lower-cased name, size."""

    headers: dict[str, tuple[str, ...]]
    size: int

    @classmethod
    def from_bytes(cls, raw: bytes) -> MessageView:
        headers: dict[str, list[str]] = {}
        try:
            # Only the header block is read, and each value in bounded time (mime.py).
            parsed, _body = mime.parse_headers(raw)
            items = parsed.raw_items()
            for count, (name, raw_value) in enumerate(items):
                if count >= MAX_HEADERS:
                    break
                headers.setdefault(name.lower(), []).append(_decoded(name, raw_value))
        except Exception:  # an unparseable head: tests see no headers, never an error
            headers = {}
        return cls({name: tuple(values) for name, values in headers.items()}, len(raw))

    def values(self, name: str) -> tuple[str, ...]:
        return self.headers.get(name, ())


def _decoded(name: str, raw_value: str) -> str:
    value = mime.decode_header_value(name, str(raw_value))
    text = " ".join(value.split("\r\n"))
    text = text.replace("\n", " ").replace("\r", " ").strip()
    return text[:MAX_HEADER_VALUE]


@dataclass
class Outcome:
    """The actions a run decided on. `folders` is empty when nothing is stored."""

    folders: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    redirects: list[str] = field(default_factory=list)
    vacation: nodes.Vacation | None = None
    discarded: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def labels(self) -> list[str]:
        return [flag for flag in self.flags if not flag.startswith("\\")]

    @property
    def system_flags(self) -> set[str]:
        return {flag for flag in self.flags if flag.startswith("\\")}


class _Stop(Exception):
    pass


class _Run:
    def __init__(self, message: MessageView, default_folder: str, budget: Budget) -> None:
        self.message = message
        self.default_folder = default_folder
        self.budget = budget
        self.outcome = Outcome()
        self.implicit_keep = True

    def block(self, commands: tuple[nodes.Command, ...]) -> None:
        for command in commands:
            self.budget.charge(1)
            self.command(command)

    def command(self, command: nodes.Command) -> None:
        outcome = self.outcome
        match command:
            case nodes.If(branches=branches, otherwise=otherwise):
                for test, body in branches:
                    if self.test(test):
                        self.block(body)
                        return
                if otherwise is not None:
                    self.block(otherwise)
            case nodes.Stop():
                raise _Stop
            case nodes.Keep():
                self.implicit_keep = False
                self.file(self.default_folder)
            case nodes.FileInto(folder=folder):
                self.implicit_keep = False
                self.file(folder)
            case nodes.Discard():
                self.implicit_keep = False
                outcome.discarded = True
            case nodes.AddFlag(flags=flags):
                for flag in flags:
                    if flag not in outcome.flags:
                        outcome.flags.append(flag)
            case nodes.Redirect(address=address):
                self.implicit_keep = False
                if address in outcome.redirects:
                    return  # RFC 5228 section 4.2: the same address only once
                if len(outcome.redirects) >= MAX_REDIRECTS:
                    outcome.notes.append(f"redirect to {address} skipped: over {MAX_REDIRECTS}")
                    return
                outcome.redirects.append(address)
            case nodes.Vacation():
                # RFC 5230 section 4.7: one vacation response per message.
                if outcome.vacation is None:
                    outcome.vacation = command

    def file(self, folder: str) -> None:
        if folder not in self.outcome.folders:
            self.outcome.folders.append(folder)

    def test(self, test: nodes.Test) -> bool:
        self.budget.charge(1)
        match test:
            case nodes.Const(value=value):
                return value
            case nodes.Not(test=inner):
                return not self.test(inner)
            case nodes.AllOf(tests=tests):
                return all(self.test(item) for item in tests)
            case nodes.AnyOf(tests=tests):
                return any(self.test(item) for item in tests)
            case nodes.ExistsTest(names=names):
                return all(self.message.values(name) for name in names)
            case nodes.SizeTest(over=over, limit=limit):
                size = self.message.size
                return size > limit if over else size < limit
            case nodes.HeaderTest():
                values = [v for name in test.names for v in self.message.values(name)]
                return self.any_match(values, test.keys, test.match, test.comparator)
            case nodes.AddressTest():
                values = [
                    part
                    for name in test.names
                    for value in self.message.values(name)
                    for part in _address_parts(value, test.part)
                ]
                return self.any_match(values, test.keys, test.match, test.comparator)
        raise AssertionError(f"unknown test {test!r}")

    def any_match(
        self,
        values: list[str],
        keys: tuple[str, ...],
        match: nodes.MatchType,
        comparator: nodes.Comparator,
    ) -> bool:
        return any(
            matches(value, key, match=match, comparator=comparator, budget=self.budget)
            for value in values
            for key in keys
        )


def _address_parts(value: str, part: nodes.AddressPart) -> list[str]:
    try:
        pairs = getaddresses([value])
    except Exception:
        return []
    found: list[str] = []
    for _name, address in pairs:
        if not address or "@" not in address:
            # RFC 5228 section 2.7.4: a group name or empty address matches :all only as "".
            continue
        local, _, domain = address.rpartition("@")
        found.append(local if part == ":localpart" else domain if part == ":domain" else address)
    return found


def evaluate(
    program: nodes.Program,
    message: MessageView,
    *,
    default_folder: str = "INBOX",
    budget: int = DEFAULT_BUDGET,
) -> Outcome:
    """Run `program`; raises matching.BudgetExceeded when it needs too much work."""
    run = _Run(message, default_folder, Budget(budget))
    with contextlib.suppress(_Stop):
        run.block(program.commands)
    if run.implicit_keep:
        run.file(default_folder)
    return run.outcome
