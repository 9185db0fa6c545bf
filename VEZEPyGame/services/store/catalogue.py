"""The item catalogue, read once at start-up from `config/store_catalogue.json`.

Items are configuration, not data people edit: the file is reviewed like code, and purchases
keep the price they were sold at, so changing a price never rewrites history.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Slot = Literal["piece_colour", "board_theme"]
SLOTS: tuple[Slot, ...] = ("piece_colour", "board_theme")
#: The style keys each slot must define (`#rrggbb` colours the board page paints with).
SLOT_STYLE_KEYS: dict[str, frozenset[str]] = {
    "piece_colour": frozenset({"piece"}),
    "board_theme": frozenset({"board", "hole"}),
}
HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"


class CatalogueItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,63}$")
    slot: Slot
    name: str = Field(min_length=1, max_length=80)
    description: str = Field("", max_length=300)
    price_cents: int = Field(gt=0, le=100_000)
    style: dict[str, str]

    @field_validator("style")
    @classmethod
    def _colours(cls, style: dict[str, str]) -> dict[str, str]:
        for key, value in style.items():
            if not re.fullmatch(HEX_COLOUR, value):
                raise ValueError(f"style {key!r} must be a #rrggbb colour, not {value!r}")
        return {key: value.lower() for key, value in style.items()}

    @model_validator(mode="after")
    def _style_fits_slot(self) -> CatalogueItem:
        if set(self.style) != SLOT_STYLE_KEYS[self.slot]:
            raise ValueError(
                f"{self.id}: a {self.slot} defines exactly {sorted(SLOT_STYLE_KEYS[self.slot])}"
            )
        return self


class Catalogue(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    items: tuple[CatalogueItem, ...]

    @model_validator(mode="after")
    def _unique_ids(self) -> Catalogue:
        ids = [item.id for item in self.items]
        if len(ids) != len(set(ids)):
            raise ValueError("catalogue item ids must be unique")
        return self

    def get(self, item_id: str) -> CatalogueItem | None:
        return next((item for item in self.items if item.id == item_id), None)


def load_catalogue(path: Path) -> Catalogue:
    """Read and validate the catalogue; a broken file stops start-up with the reason."""
    return Catalogue.model_validate(json.loads(path.read_text(encoding="utf-8")))
