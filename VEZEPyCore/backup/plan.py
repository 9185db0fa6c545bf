"""What a backup holds: each service's database URL and the directories beside them.

Read from the same environment variables the services read (ops/runbook.md), with the same
defaults. VEZEPyCore imports no service, so the names are listed here; a test checks that they
resolve to what each service's settings class resolves.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

#: Service -> the variable naming its database (the default is a SQLite file under var).
DATABASE_VARIABLES = {"portal": "UNI_DB_URL", "game": "GAME_DB_URL", "email": "EMAIL_DB_URL"}


@dataclass(frozen=True)
class BackupPlan:
    #: name -> SQLAlchemy URL (sqlite+aiosqlite:///... or postgresql+asyncpg://...)
    databases: dict[str, str] = field(default_factory=dict)
    #: name -> directory (mail blobs, secrets and keys)
    directories: dict[str, Path] = field(default_factory=dict)


def plan_from_environment(environ: Mapping[str, str] | None = None) -> BackupPlan:
    env = os.environ if environ is None else environ
    var_dir = Path(env.get("VEZE_VAR_DIR") or "var")
    databases = {
        service: env.get(variable) or f"sqlite+aiosqlite:///{var_dir / f'{service}.db'}"
        for service, variable in DATABASE_VARIABLES.items()
    }
    directories = {
        "mail": Path(env.get("EMAIL_MAIL_DIR") or var_dir / "mail"),
        "secrets": Path(env.get("VEZE_SECRETS_DIR") or var_dir / "secrets"),
    }
    return BackupPlan(databases=databases, directories=directories)
