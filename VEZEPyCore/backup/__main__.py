"""`python -m VEZEPyCore.backup create|verify|restore`: see ops/runbook.md.

The databases and directories come from the services' environment variables (`UNI_DB_URL`,
`GAME_DB_URL`, `EMAIL_DB_URL`, `EMAIL_MAIL_DIR`, `VEZE_SECRETS_DIR`, `VEZE_VAR_DIR`).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from VEZEPyCore.backup.archive import BackupError, create_backup, restore_backup, verify_backup
from VEZEPyCore.backup.plan import plan_from_environment


def _summary(manifest: dict[str, object]) -> str:
    databases = manifest.get("databases", {})
    directories = manifest.get("directories", {})
    assert isinstance(databases, dict) and isinstance(directories, dict)
    parts = [f"{name} ({item['kind']})" for name, item in sorted(databases.items())]
    parts += [f"{name} ({len(item['files'])} files)" for name, item in sorted(directories.items())]
    return ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m VEZEPyCore.backup", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="back up every database, mail and secrets")
    create.add_argument(
        "--output",
        type=Path,
        help="archive to write (default: backups/veze-<UTC time>.tar.gz)",
    )
    verify = commands.add_parser("verify", help="check an archive's checksums")
    verify.add_argument("archive", type=Path)
    restore = commands.add_parser("restore", help="restore an archive (services stopped)")
    restore.add_argument("archive", type=Path)
    restore.add_argument(
        "--force", action="store_true", help="replace databases and directories that hold data"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "create":
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
            output = args.output or Path("backups") / f"veze-{stamp}.tar.gz"
            manifest = create_backup(plan_from_environment(), output)
            print(f"wrote {output}: {_summary(manifest)}")
        elif args.command == "verify":
            manifest = verify_backup(args.archive)
            print(f"{args.archive} is complete, checksums match: {_summary(manifest)}")
        else:
            manifest = restore_backup(args.archive, plan_from_environment(), force=args.force)
            print(f"restored {args.archive} (made {manifest['created_at']}): {_summary(manifest)}")
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
