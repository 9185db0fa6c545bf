"""The pairing pass as a pure function: waiting tickets in, pairs out. No I/O, no clock.

Tickets meet only inside their own (mode, region) pool. Each ticket accepts an opponent whose
rating is within its *window*, which starts narrow and widens with the time the ticket has
waited; a pair needs both tickets to accept (the gap is within the smaller window).

Within a pool, the closest acceptable ratings are paired first (greedy by gap). Sorted by
rating, each ticket keeps one candidate on a heap: the next ticket to its right that it has
not ruled out, within its own window. Popping the smallest gap either pairs the two (both
free, both accept) or moves that ticket's candidate one further right. Candidates only move
right, so a pass costs O(n log n) plus the tickets a wide window has to look past.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from operator import itemgetter
from typing import NamedTuple


class WaitingTicket(NamedTuple):
    """A plain tuple: a pass builds ten thousand of these straight from database rows."""

    ticket_id: str
    player_id: int
    mode: str
    region: str
    rating: float
    waited_seconds: float
    #: The player accepts the bot (an unrated game) when nobody fits in time.
    bot_fill: bool = True


@dataclass(frozen=True, slots=True)
class Window:
    """How far from its own rating a ticket accepts an opponent, after waiting a while."""

    base: float
    growth_per_second: float
    maximum: float

    def width(self, waited_seconds: float) -> float:
        return min(self.base + self.growth_per_second * max(waited_seconds, 0.0), self.maximum)


class Pair(NamedTuple):
    first: WaitingTicket
    second: WaitingTicket

    @property
    def gap(self) -> float:
        return abs(self.first.rating - self.second.rating)


_RATING = itemgetter(4)  # WaitingTicket.rating


def acceptable(a: WaitingTicket, b: WaitingTicket, window: Window) -> bool:
    """May these two play each other now? Same pool, two people, both windows hold the gap."""
    if a.player_id == b.player_id or a.mode != b.mode or a.region != b.region:
        return False
    allowed = min(window.width(a.waited_seconds), window.width(b.waited_seconds))
    return abs(a.rating - b.rating) <= allowed


def pair_tickets(tickets: Iterable[WaitingTicket], window: Window) -> list[Pair]:
    """One pairing pass; every ticket is in at most one pair (pairs keep rating order)."""
    pools: dict[tuple[str, str], list[WaitingTicket]] = defaultdict(list)
    for ticket in tickets:
        pools[ticket[2:4]].append(ticket)  # (mode, region)
    pairs: list[Pair] = []
    for pool in pools.values():
        pairs.extend(_pair_pool(pool, window))
    return pairs


def _pair_pool(pool: list[WaitingTicket], window: Window) -> list[Pair]:
    # Sorted by rating alone (in C): equal ratings keep their arrival order.
    ordered = sorted(pool, key=_RATING)
    count = len(ordered)
    if count < 2:
        return []
    _ids, players, _modes, _regions, ratings, waits, _bots = zip(*ordered, strict=True)
    base, growth, maximum = window.base, window.growth_per_second, window.maximum
    widths = [min(base + growth * waited, maximum) if waited > 0 else base for waited in waits]
    taken = [False] * count
    # following[i]: a ticket to the right of i, skipping taken ones lazily (see _next_free).
    following = list(range(1, count + 1))
    # Each ticket's first candidate is its right neighbour (nothing is taken yet).
    heap = [
        (gap, index, index + 1)
        for index, gap in enumerate(b - a for a, b in pairwise(ratings))
        if gap <= widths[index]
    ]
    heapq.heapify(heap)

    def offer(left: int, right: int) -> None:
        """Queue left's next candidate at or after `right`, if left's own window reaches it."""
        right = _next_free(following, taken, right, count)
        if right < count and ratings[right] - ratings[left] <= widths[left]:
            heapq.heappush(heap, (ratings[right] - ratings[left], left, right))

    pairs: list[Pair] = []
    while heap:
        gap, left, right = heapq.heappop(heap)
        if taken[left]:
            continue
        if taken[right] or gap > widths[right] or players[left] == players[right]:
            # That one is gone, or does not accept left yet: left's next candidate, further
            # right (and so no closer), takes its place in the heap.
            offer(left, following[right])
            continue
        taken[left] = taken[right] = True
        pairs.append(Pair(ordered[left], ordered[right]))
    return pairs


def _next_free(following: list[int], taken: list[bool], start: int, count: int) -> int:
    """The first ticket at or after `start` not yet taken (with path compression)."""
    index = start
    while index < count and taken[index]:
        index = following[index]
    # Compress: every taken ticket walked over now points straight past the run.
    walk = start
    while walk < count and taken[walk] and following[walk] != index:
        following[walk], walk = index, following[walk]
    return index


def pair_first_come(tickets: Sequence[WaitingTicket]) -> list[Pair]:
    """The naive baseline: in each pool, the longest waiters are paired two by two, ratings
    ignored. Only the benchmark uses it, to show what rating-aware pairing buys."""
    pools: dict[tuple[str, str], list[WaitingTicket]] = defaultdict(list)
    for ticket in sorted(tickets, key=lambda t: -t.waited_seconds):
        pools[(ticket.mode, ticket.region)].append(ticket)
    pairs: list[Pair] = []
    for pool in pools.values():
        pending: WaitingTicket | None = None
        for ticket in pool:
            if pending is None:
                pending = ticket
            elif pending.player_id != ticket.player_id:
                pairs.append(Pair(pending, ticket))
                pending = None
    return pairs


def due_for_bot(ticket: WaitingTicket, *, bot_after_seconds: float | None) -> bool:
    """A ticket nobody fitted for this long gets a bot opponent (None: never), if its player
    agreed to one when queueing."""
    return (
        ticket.bot_fill
        and bot_after_seconds is not None
        and ticket.waited_seconds >= bot_after_seconds
    )
