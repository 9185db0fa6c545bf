"""The compiled form of a script: plain frozen dataclasses the evaluator walks.

sievelib's command objects carry parser state and quoted strings; compiling them once into
these nodes keeps the evaluator small, typed and free of parser details.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MatchType = Literal[":is", ":contains", ":matches"]
Comparator = Literal["i;ascii-casemap", "i;octet"]
AddressPart = Literal[":all", ":localpart", ":domain"]


@dataclass(frozen=True)
class Const:
    """`true` / `false`."""

    value: bool


@dataclass(frozen=True)
class HeaderTest:
    names: tuple[str, ...]
    keys: tuple[str, ...]
    match: MatchType = ":is"
    comparator: Comparator = "i;ascii-casemap"


@dataclass(frozen=True)
class AddressTest:
    names: tuple[str, ...]
    keys: tuple[str, ...]
    part: AddressPart = ":all"
    match: MatchType = ":is"
    comparator: Comparator = "i;ascii-casemap"


@dataclass(frozen=True)
class ExistsTest:
    names: tuple[str, ...]


@dataclass(frozen=True)
class SizeTest:
    over: bool
    limit: int


@dataclass(frozen=True)
class AllOf:
    tests: tuple[Test, ...]


@dataclass(frozen=True)
class AnyOf:
    tests: tuple[Test, ...]


@dataclass(frozen=True)
class Not:
    test: Test


Test = Const | HeaderTest | AddressTest | ExistsTest | SizeTest | AllOf | AnyOf | Not


@dataclass(frozen=True)
class Keep:
    pass


@dataclass(frozen=True)
class Discard:
    pass


@dataclass(frozen=True)
class Stop:
    pass


@dataclass(frozen=True)
class FileInto:
    folder: str


@dataclass(frozen=True)
class AddFlag:
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Redirect:
    address: str


@dataclass(frozen=True)
class Vacation:
    reason: str
    days: int
    subject: str | None
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class If:
    """`if` with its `elsif` branches and optional `else` folded into one node."""

    branches: tuple[tuple[Test, tuple[Command, ...]], ...]
    otherwise: tuple[Command, ...] | None


Command = Keep | Discard | Stop | FileInto | AddFlag | Redirect | Vacation | If


@dataclass(frozen=True)
class Program:
    commands: tuple[Command, ...]
