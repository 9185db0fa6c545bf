"""Store dependencies: the catalogue loaded at start-up, and the caller's player."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from VEZEPyGame.services.store.catalogue import Catalogue


def _catalogue(request: Request) -> Catalogue:
    catalogue: Catalogue = request.app.state.store_catalogue
    return catalogue


CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]
