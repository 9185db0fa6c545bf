"""Operator commands for the portal: `python -m VEZEPyUniQVerse.cli grant-admin <handle>`.

Uses the portal's own settings (`UNI_DB_URL`, ...), so it acts on the database the running
portal uses. The first admin of an installation is made here (or with `UNI_ADMIN_HANDLES` at
sign-up); after that, admins grant roles in the console.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from VEZEPyCore.db.engine import make_engine, make_sessionmaker
from VEZEPyCore.db.migrations import upgrade_to_head
from VEZEPyUniQVerse.app.settings import PortalSettings
from VEZEPyUniQVerse.services.accounts.service import get_user_by_handle
from VEZEPyUniQVerse.services.audit.service import record

#: The portal's migrations (importing app.main would build an app just for this).
MIGRATIONS = Path(__file__).resolve().parent / "db" / "alembic"


async def grant_admin(settings: PortalSettings, handle: str) -> str:
    """Give `handle` the admin role; returns what happened, for the operator."""
    await upgrade_to_head(MIGRATIONS, settings.db_url)
    engine = make_engine(settings.db_url)
    try:
        async with make_sessionmaker(engine)() as db:
            user = await get_user_by_handle(db, handle=handle)
            if user is None:
                raise LookupError(f"no account with the handle {handle!r}; sign up first")
            if "admin" in user.roles:
                return f"{user.handle} is already an admin"
            user.roles = [*user.roles, "admin"]
            record(
                db,
                actor="cli",
                action="admin.role_granted",
                target=user.handle,
                detail={"role": "admin", "roles": list(user.roles)},
            )
            await db.commit()
            return f"{user.handle} is now an admin"
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m VEZEPyUniQVerse.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    grant = commands.add_parser("grant-admin", help="give an account the admin role")
    grant.add_argument("handle")
    arguments = parser.parse_args(argv)
    if arguments.command == "grant-admin":
        try:
            print(asyncio.run(grant_admin(PortalSettings(), arguments.handle)))
        except LookupError as exc:
            print(f"error: {exc.args[0]}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
