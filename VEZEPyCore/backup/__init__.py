"""Backup and restore of the whole installation: the three databases, mail blobs and secrets.

`python -m VEZEPyCore.backup create|verify|restore` (see ops/runbook.md, "Backup and restore").
One archive holds every part with a manifest of SHA-256 checksums; restore checks them all
before it touches anything, and refuses to overwrite a non-empty target unless forced.
"""

from VEZEPyCore.backup.archive import BackupError, create_backup, restore_backup, verify_backup
from VEZEPyCore.backup.plan import BackupPlan, plan_from_environment

__all__ = [
    "BackupError",
    "BackupPlan",
    "create_backup",
    "plan_from_environment",
    "restore_backup",
    "verify_backup",
]
