"""The rating model: openskill's Plackett-Luce on a familiar scale.

openskill defaults to mu=25, sigma=25/3; every one of its constants scales with mu, so the
same model on mu=1500, sigma=350 (Glicko's starting uncertainty) moves ratings by the familiar
amounts: two new players' first game moves each by about 120, settling as sigma shrinks.
The rating shown, ranked and matched on is mu, rounded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from openskill.models import PlackettLuce

INITIAL_MU = 1500.0
INITIAL_SIGMA = 350.0
#: The floor sigma never shrinks below, so a settled rating can still move.
MIN_SIGMA = 60.0

Outcome = Literal["win", "loss", "draw"]

_MODEL = PlackettLuce(mu=INITIAL_MU, sigma=INITIAL_SIGMA)


@dataclass(frozen=True, slots=True)
class Skill:
    mu: float = INITIAL_MU
    sigma: float = INITIAL_SIGMA

    @property
    def display(self) -> int:
        return round(self.mu)


def rate_pair(first: Skill, second: Skill, outcome: Outcome) -> tuple[Skill, Skill]:
    """New skills after one game; `outcome` is the first player's ("win", "loss", "draw")."""
    ranks: list[float] = {"win": [1.0, 2.0], "loss": [2.0, 1.0], "draw": [1.0, 1.0]}[outcome]
    a = _MODEL.rating(mu=first.mu, sigma=first.sigma)
    b = _MODEL.rating(mu=second.mu, sigma=second.sigma)
    [[new_a], [new_b]] = _MODEL.rate([[a], [b]], ranks=ranks)
    return (
        Skill(new_a.mu, max(new_a.sigma, MIN_SIGMA)),
        Skill(new_b.mu, max(new_b.sigma, MIN_SIGMA)),
    )


def opposite(outcome: Outcome) -> Outcome:
    return {"win": "loss", "loss": "win", "draw": "draw"}[outcome]  # type: ignore[return-value]
