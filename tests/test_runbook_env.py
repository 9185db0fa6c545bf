"""The runbook's environment variable tables list every setting with its real default.

Every field of every settings class (the shared core and each service's) is read from the
environment under its alias names; each name must be in a `| variable | default | ... |` table
of ops/runbook.md, and the default cell must say the value a service really starts with.
Nothing may be documented that no code reads.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from VEZEPyCore.settings import CoreSettings
from VEZEPyEmail.app.settings import EmailSettings
from VEZEPyGame.app.settings import GameSettings
from VEZEPyUniQVerse.app.settings import PortalSettings

ROOT = Path(__file__).resolve().parents[1]
RUNBOOK = ROOT / "ops" / "runbook.md"
PACKAGES = ("VEZEPyCore", "VEZEPyUniQVerse", "VEZEPyGame", "VEZEPyEmail")


def _settings_classes() -> tuple[type[BaseSettings], ...]:
    """Every settings class in the four packages, found by importing their modules (a settings
    class added anywhere, like the game's `CompetitionSettings`, is held to the runbook too)."""
    for package in PACKAGES:
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, prefix=f"{package}."):
            parts = module.name.split(".")
            if not {"tests", "alembic", "__main__"} & set(parts):
                importlib.import_module(module.name)
    found: dict[str, type[BaseSettings]] = {}
    pending = list(BaseSettings.__subclasses__())
    while pending:
        cls = pending.pop()
        pending += cls.__subclasses__()
        if cls.__module__.split(".")[0] in PACKAGES:
            found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return tuple(found[name] for name in sorted(found))


SETTINGS_CLASSES = _settings_classes()
#: Fields filled from families of variables rather than one name (see CoreSettings).
PATTERN_FIELDS = {
    "service_urls": ("VEZE_SERVICE_<NAME>", "<NAME>_BASE_URL"),
    "public_urls": ("VEZE_PUBLIC_URL_<NAME>",),
    "asgi_services": ("<NAME>_ASGI",),
}
#: Read by code outside the settings classes, and where.
OTHER_READERS = {
    "VEZE_CLIENT_SECRET_<CLIENT_ID>": "VEZEPyCore/settings.py",
    "PORTAL_PORT": "Procfile",
    "GAME_PORT": "Procfile",
    "EMAIL_PORT": "Procfile",
    "VEZE_HOST": "Procfile",
    "FORWARDED_ALLOW_IPS": "docker/portal.Dockerfile",
    "WEB_CONCURRENCY": "VEZEPyCore/web/workers.py",
}
#: What a None default may be called in the table.
UNSET_WORDS = ("unset", "empty")


def runbook_rows() -> dict[str, str]:
    """Variable name -> default cell, from every `| variable | default | ... |` table."""
    rows: dict[str, str] = {}
    in_table = False
    for line in RUNBOOK.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| variable | default |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table or set(cells[0]) <= {"-", ":"}:
            continue
        for name in re.findall(r"`([A-Z<][A-Za-z0-9_<>]*)`", cells[0]):
            assert name not in rows, f"{name} is documented twice"
            rows[name] = cells[1]
    return rows


def env_names(field_alias: object) -> list[str]:
    assert isinstance(field_alias, AliasChoices), field_alias
    return [str(choice) for choice in field_alias.choices]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting comes from the environment the tests run in (CI sets database URLs)."""
    import os

    names = {
        name
        for cls in SETTINGS_CLASSES
        for field in cls.model_fields.values()
        if field.validation_alias is not None
        for name in env_names(field.validation_alias)
    }
    for key in list(os.environ):
        if key in names or key.startswith(("VEZE_SERVICE_", "VEZE_PUBLIC_URL_")):
            monkeypatch.delenv(key)


def expected_in_cell(value: Any) -> list[str]:
    """Ways the default cell may spell `value` (any one of them must appear)."""
    if value is None or value == "" or value == frozenset():
        return list(UNSET_WORDS)
    if isinstance(value, bool):
        return ["on"] if value else ["off"]
    if isinstance(value, float) and value.is_integer():
        return [str(int(value)), str(value)]
    if isinstance(value, int | float):
        return [str(value)]
    text = str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)
    return [f"`{text}`"]


def spelled(cell: str, candidates: list[str]) -> bool:
    # $VEZE_VAR_DIR in the runbook is the `var` directory of the defaults.
    normalised = cell.replace("$VEZE_VAR_DIR", "var")
    for candidate in candidates:
        if candidate.startswith("`"):
            if candidate[1:-1] in normalised:
                return True
        elif re.search(rf"(?<![\w.]){re.escape(candidate)}(?![\w.])", normalised):
            return True
    return False


def test_every_settings_class_is_found() -> None:
    assert {CoreSettings, PortalSettings, GameSettings, EmailSettings} <= set(SETTINGS_CLASSES)


def test_the_runbook_table_is_read() -> None:
    rows = runbook_rows()
    assert rows["VEZE_ENV"] == "`development`"
    assert "EMAIL_SMTP_PORT" in rows and "UNI_PROVISIONING_BACKOFF" in rows


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize("cls", SETTINGS_CLASSES, ids=lambda cls: cls.__name__)
def test_every_setting_is_documented_with_its_default(cls: type[BaseSettings]) -> None:
    rows = runbook_rows()
    instance = cls()
    problems: list[str] = []
    for name, field in cls.model_fields.items():
        if name in PATTERN_FIELDS:
            problems += [f"{p} is not documented" for p in PATTERN_FIELDS[name] if p not in rows]
            continue
        if field.validation_alias is None:
            problems.append(f"{cls.__name__}.{name} has no environment name")
            continue
        names = env_names(field.validation_alias)
        documented = [env for env in names if env in rows]
        problems += [
            f"{env} ({cls.__name__}.{name}) is not documented" for env in names if env not in rows
        ]
        if not documented:
            continue
        # The default written in the class, or what a service derives from it at start.
        value = field.get_default(call_default_factory=True)
        effective = getattr(instance, name)
        cell = rows[documented[0]]
        if not (
            spelled(cell, expected_in_cell(value)) or spelled(cell, expected_in_cell(effective))
        ):
            problems.append(
                f"{documented[0]}: default {effective!r} is not what the runbook says ({cell})"
            )
    assert not problems, "\n".join(problems)


def test_nothing_is_documented_that_no_code_reads() -> None:
    known = set(OTHER_READERS) | {p for patterns in PATTERN_FIELDS.values() for p in patterns}
    for cls in SETTINGS_CLASSES:
        for field in cls.model_fields.values():
            if field.validation_alias is not None:
                known |= set(env_names(field.validation_alias))
    unknown = set(runbook_rows()) - known
    assert not unknown, f"the runbook documents variables nothing reads: {sorted(unknown)}"
    for name, path in OTHER_READERS.items():
        stem = name.split("<")[0]
        assert stem in (ROOT / path).read_text(), f"{path} does not read {name}"
