"""Comparators (RFC 4790) and match types (RFC 5228 section 2.7.1), with a work budget.

`:matches` uses a hand-rolled wildcard matcher rather than a translated regular expression:
a pattern like `*a*a*a*b` would make a backtracking regex engine take exponential time on a
hostile header, while the two-pointer matcher here is O(len(value) x len(pattern)) at worst,
and every step it takes is charged to the evaluation's budget.
"""

from __future__ import annotations

from VEZEPyEmail.services.sieve.nodes import Comparator, MatchType

_ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class BudgetExceeded(RuntimeError):
    """The script needed more work than one delivery may spend on it."""


class Budget:
    """Counts the work one evaluation does; raises BudgetExceeded past `limit` units."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def charge(self, units: int) -> None:
        self.used += units
        if self.used > self.limit:
            raise BudgetExceeded(f"rule evaluation exceeded {self.limit} work units")


def fold(value: str, comparator: Comparator) -> str:
    """i;ascii-casemap folds only ASCII letters (RFC 4790 section 9.2); i;octet keeps all."""
    return value.translate(_ASCII_FOLD) if comparator == "i;ascii-casemap" else value


def _pattern_tokens(pattern: str) -> list[str]:
    """Split a :matches key into literal characters and the wildcards "*" and "?".

    A backslash makes the next character literal (RFC 5228 section 2.7.1); literal wildcards
    come back as two-character tokens so they never compare equal to a wildcard.
    """
    tokens: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            tokens.append("\\" + char if char in "*?" else char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            tokens.append(char)
    return tokens


def wildcard_match(value: str, pattern: str, budget: Budget) -> bool:
    """True when `value` matches `pattern` ("*" any run, "?" one character)."""
    tokens = _pattern_tokens(pattern)
    v = p = 0
    star_p = -1
    star_v = 0
    steps = 0
    while v < len(value):
        steps += 1
        if steps >= 256:  # charge in batches: one call per character would dominate
            budget.charge(steps)
            steps = 0
        if p < len(tokens) and tokens[p] == "*":
            star_p, star_v = p, v
            p += 1
        elif p < len(tokens) and (tokens[p] == "?" or _literal(tokens[p]) == value[v]):
            v += 1
            p += 1
        elif star_p >= 0:
            # Let the last "*" swallow one more character and retry from there.
            star_v += 1
            v = star_v
            p = star_p + 1
        else:
            budget.charge(steps)
            return False
    budget.charge(steps + 1)
    while p < len(tokens) and tokens[p] == "*":
        p += 1
    return p == len(tokens)


def _literal(token: str) -> str:
    return token[1] if len(token) == 2 and token[0] == "\\" else token


def matches(
    value: str, key: str, *, match: MatchType, comparator: Comparator, budget: Budget
) -> bool:
    """One value against one key under the match type and comparator."""
    value, key = fold(value, comparator), fold(key, comparator)
    if match == ":is":
        budget.charge(1 + min(len(value), len(key)) // 64)
        return value == key
    if match == ":contains":
        budget.charge(1 + len(value) // 64)
        return key in value
    return wildcard_match(value, key, budget)
