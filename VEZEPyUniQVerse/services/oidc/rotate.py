"""Rotate the portal's token signing key: `python -m VEZEPyUniQVerse.services.oidc.rotate`.

The new key signs from now on (every portal worker reads the active key from the database
when it signs). The old key stays in the JWKS until the tokens it signed have expired
(access-token lifetime + leeway), so nothing in flight is refused. Prints the new `kid`.

`--list` shows the keys instead: kid, algorithm, created, retired, unpublished after.
Reads the portal's settings from the environment (`UNI_DB_URL`, `UNI_ACCESS_TOKEN_TTL`, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select

from VEZEPyCore.db.engine import make_engine, make_sessionmaker
from VEZEPyCore.db.migrations import upgrade_to_head
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.db.models import SigningKey
from VEZEPyUniQVerse.services.oidc.keys import rotate_signing_key
from VEZEPyUniQVerse.services.oidc.startup import retire_window

MIGRATIONS = Path(__file__).resolve().parents[2] / "db" / "alembic"


async def run(settings: PortalSettings, *, list_only: bool) -> list[str]:
    """Rotate (or list); the lines to print."""
    await upgrade_to_head(MIGRATIONS, settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        sessionmaker = make_sessionmaker(engine)
        if not list_only:
            return [await rotate_signing_key(sessionmaker, retire_window=retire_window(settings))]
        async with sessionmaker() as db:
            rows = await db.scalars(select(SigningKey).order_by(SigningKey.created_at.desc()))
            return [
                "\t".join(
                    [
                        row.kid,
                        row.algorithm,
                        row.created_at.isoformat(timespec="seconds"),
                        row.retired_at.isoformat(timespec="seconds")
                        if row.retired_at
                        else "active",
                        row.unpublish_after.isoformat(timespec="seconds")
                        if row.unpublish_after
                        else "-",
                    ]
                )
                for row in rows
            ]
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m VEZEPyUniQVerse.services.oidc.rotate",
        description="Rotate the portal's token signing key and print the new key id.",
    )
    parser.add_argument("--list", action="store_true", help="list the keys, rotate nothing")
    args = parser.parse_args(argv)
    for line in asyncio.run(run(PortalSettings(), list_only=args.list)):
        sys.stdout.write(line + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
