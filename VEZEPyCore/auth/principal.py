"""The verified caller of a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Principal:
    subject: str
    scopes: frozenset[str]
    #: The address the token speaks for (`email` claim, or a subject that is an address).
    address: str | None = None
    is_demo: bool = False
    claims: dict[str, Any] = field(default_factory=dict, compare=False)
    #: The raw bearer token, kept so a service can call another on the caller's behalf.
    token: str = field(default="", repr=False, compare=False)

    def has_scopes(self, *required: str) -> bool:
        return set(required) <= self.scopes

    def missing_scopes(self, *required: str) -> list[str]:
        return sorted(set(required) - self.scopes)
