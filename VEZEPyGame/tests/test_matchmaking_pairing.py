"""The pure pairing pass, by property (Hypothesis) and by example."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from VEZEPyGame.services.matchmaking.pairing import (
    Pair,
    WaitingTicket,
    Window,
    acceptable,
    pair_first_come,
    pair_tickets,
)

WINDOW = Window(base=50, growth_per_second=10, maximum=400)

tickets_strategy = st.lists(
    st.tuples(
        # A small id range makes the same player's tickets (which must never meet) likely.
        st.integers(1, 30),
        st.sampled_from(["ranked", "casual"]),
        st.sampled_from(["eu", "na"]),
        st.integers(800, 2400).map(float),
        st.integers(0, 60).map(float),
    ),
    max_size=40,
).map(lambda rows: [WaitingTicket(f"t{i}", *row) for i, row in enumerate(rows)])
windows = st.builds(
    Window,
    base=st.floats(0, 200),
    growth_per_second=st.floats(0, 50),
    maximum=st.floats(200, 800),
)


def _ids(pairs: list[Pair]) -> list[str]:
    return [t.ticket_id for pair in pairs for t in (pair.first, pair.second)]


@given(tickets_strategy, windows)
@settings(max_examples=150, deadline=None)
def test_a_ticket_is_never_in_two_pairs(tickets: list[WaitingTicket], window: Window) -> None:
    ids = _ids(pair_tickets(tickets, window))
    assert len(ids) == len(set(ids))
    assert set(ids) <= {t.ticket_id for t in tickets}


@given(tickets_strategy, windows)
@settings(max_examples=150, deadline=None)
def test_pairs_respect_the_window_the_pool_and_never_self_match(
    tickets: list[WaitingTicket], window: Window
) -> None:
    for pair in pair_tickets(tickets, window):
        a, b = pair.first, pair.second
        assert a.player_id != b.player_id
        assert (a.mode, a.region) == (b.mode, b.region)
        assert pair.gap <= min(window.width(a.waited_seconds), window.width(b.waited_seconds))


@given(tickets_strategy, windows)
@settings(max_examples=150, deadline=None)
def test_the_pass_is_maximal_no_two_leftover_tickets_could_have_played(
    tickets: list[WaitingTicket], window: Window
) -> None:
    """No two tickets left unpaired could have played each other."""
    paired = set(_ids(pair_tickets(tickets, window)))
    left = [t for t in tickets if t.ticket_id not in paired]
    pools: dict[tuple[str, str], list[WaitingTicket]] = {}
    for ticket in left:
        pools.setdefault((ticket.mode, ticket.region), []).append(ticket)
    for pool in pools.values():
        for a in pool:
            for b in pool:
                if a is not b:
                    assert not acceptable(a, b, window)


@given(st.floats(0, 1000, allow_nan=False), st.floats(0, 1000, allow_nan=False), windows)
def test_the_window_widens_with_waiting_and_stops_at_its_maximum(
    earlier: float, later: float, window: Window
) -> None:
    earlier, later = sorted((earlier, later))
    assert window.width(earlier) <= window.width(later)
    assert window.width(later) <= max(window.maximum, window.base)


@given(st.floats(51, 390, allow_nan=False))
def test_a_gap_too_wide_now_is_paired_once_both_have_waited_long_enough(gap: float) -> None:
    fresh = [
        WaitingTicket("a", 1, "ranked", "eu", 1500.0, 0.0),
        WaitingTicket("b", 2, "ranked", "eu", 1500.0 + gap, 0.0),
    ]
    assert pair_tickets(fresh, WINDOW) == []
    wait = (gap - WINDOW.base) / WINDOW.growth_per_second + 0.01
    aged = [
        WaitingTicket(t.ticket_id, t.player_id, t.mode, t.region, t.rating, wait) for t in fresh
    ]
    assert len(pair_tickets(aged, WINDOW)) == 1


def test_a_fresh_ticket_between_two_long_waiters_does_not_block_them() -> None:
    tickets = [
        WaitingTicket("a", 1, "ranked", "eu", 1500.0, 60.0),
        WaitingTicket("b", 2, "ranked", "eu", 1560.0, 0.0),  # accepts only +-50
        WaitingTicket("c", 3, "ranked", "eu", 1620.0, 60.0),
    ]
    pairs = pair_tickets(tickets, WINDOW)
    assert [(p.first.ticket_id, p.second.ticket_id) for p in pairs] == [("a", "c")]


def test_the_closest_ratings_are_paired_first() -> None:
    waited = 100.0  # every window at its maximum: everyone accepts everyone
    tickets = [
        WaitingTicket(name, index, "ranked", "eu", rating, waited)
        for index, (name, rating) in enumerate(
            [("a", 1000), ("b", 1290), ("c", 1300), ("d", 1330), ("e", 1600), ("f", 1605)]
        )
    ]
    pairs = {
        frozenset((p.first.ticket_id, p.second.ticket_id)) for p in pair_tickets(tickets, WINDOW)
    }
    # e-f (5) and b-c (10) first; then a and d are neighbours, 330 apart, within 400.
    assert pairs == {frozenset("ef"), frozenset("bc"), frozenset("ad")}


def mean_gap(pairs: list[Pair]) -> float:
    return sum(p.gap for p in pairs) / len(pairs)


def test_rating_aware_pairs_are_closer_than_first_come_pairs() -> None:
    tickets = [
        WaitingTicket(f"t{i}", i, "ranked", "eu", float(1000 + (i * 7919) % 1000), float(i % 30))
        for i in range(400)
    ]
    smart = pair_tickets(tickets, Window(400, 0, 400))
    naive = pair_first_come(tickets)
    assert len(smart) >= 150
    assert mean_gap(smart) < mean_gap(naive) / 5
