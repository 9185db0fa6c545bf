"""The container setup: `docker-compose.yml`, its `postgres` profile, and the Dockerfiles.

No Docker engine runs here, so these tests check what can be checked without one: the Compose
file validates and resolves (`docker-compose config`, default and `--profile postgres` with
`docker/postgres.env`), every service has a health check, the app services get the
environment, ports and volumes the code expects, and every image drops root before its CMD.
A missing `docker-compose` is a failure, not a skip: the file would otherwise go unchecked.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
POSTGRES_ENV = ROOT / "docker" / "postgres.env"
POSTGRES_INIT = ROOT / "docker" / "postgres-init.sql"
SERVICES_JSON = ROOT / "config" / "services.json"


@dataclass(frozen=True)
class AppService:
    name: str
    port: int
    db_env: str
    database: str
    extra_ports: tuple[int, ...] = ()

    @property
    def dockerfile(self) -> Path:
        return ROOT / "docker" / f"{self.name}.Dockerfile"


APP_SERVICES = (
    AppService("portal", 8000, "UNI_DB_URL", "veze_portal"),
    AppService("game", 8002, "GAME_DB_URL", "veze_game"),
    AppService("email", 8004, "EMAIL_DB_URL", "veze_email", extra_ports=(2525, 2587, 2465)),
)
BASE_SERVICES = {"redis", *(service.name for service in APP_SERVICES)}
#: Variables the Compose file interpolates; removed from the environment of `config` so a
#: developer's shell (or CI's test job, which sets the *_DB_URL) cannot change the result.
INTERPOLATED = ("UNI_DB_URL", "GAME_DB_URL", "EMAIL_DB_URL", "VEZE_JWT_ISS", "POSTGRES_PASSWORD")

Services = dict[str, dict[str, Any]]
RunConfig = Callable[..., Services]


def _compose_command() -> list[str]:
    """`docker-compose` (v1, Debian's package), else the `docker compose` v2 plugin."""
    binary = shutil.which("docker-compose")
    if binary is not None:
        return [binary]
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    pytest.fail(
        "docker-compose is not installed, so docker-compose.yml cannot be validated: "
        "install it (`apt-get install -y docker-compose`) or the Docker Compose v2 plugin"
    )


@pytest.fixture(scope="module")
def compose_command() -> list[str]:
    return _compose_command()


@pytest.fixture
def compose_config(compose_command: list[str], tmp_path: Path) -> RunConfig:
    """`compose_config(profile=None, env_file=None)`: the services `up` would start, resolved."""

    def run(*, profile: str | None = None, env_file: Path | None = None) -> Services:
        if env_file is None:
            # An explicit empty env file, so a developer's `.env` at the root is not read.
            env_file = tmp_path / "empty.env"
            env_file.write_text("")
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in INTERPOLATED and not key.startswith("COMPOSE_")
        }
        command = [*compose_command, "-f", str(COMPOSE_FILE), "--env-file", str(env_file)]
        if profile is not None:
            command += ["--profile", profile]
        result = subprocess.run(
            [*command, "config"],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, (
            f"{' '.join(command)} config exited {result.returncode}:\n{result.stderr}"
        )
        config = yaml.safe_load(result.stdout)
        assert isinstance(config, dict), result.stdout
        services: Services = config["services"]
        # Compose v1's `config` also lists the services of profiles that are not enabled.
        return {
            name: service
            for name, service in services.items()
            if not service.get("profiles") or profile in service["profiles"]
        }

    return run


def published_ports(service: dict[str, Any]) -> set[tuple[int, int]]:
    """(published, target) pairs from either the short or the long port syntax."""
    pairs = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            pairs.add((int(port["published"]), int(port["target"])))
        else:  # "[host_ip:]published:target[/protocol]"
            *_, published, target = str(port).split("/")[0].split(":")
            pairs.add((int(published), int(target)))
    return pairs


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> named volume (or host path) from either volume syntax."""
    result = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            result[str(volume["target"])] = str(volume["source"])
        else:
            source, target = str(volume).split(":")[:2]
            result[target] = source
    return result


def env_file_values(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def health_url(test: list[str] | str) -> str | None:
    match = re.search(r"https?://[^\s'\"]+", " ".join(test) if isinstance(test, list) else test)
    return match.group(0) if match else None


# ---- docker-compose.yml -------------------------------------------------------------------


def test_default_config_has_the_services_each_with_a_health_check(
    compose_config: RunConfig,
) -> None:
    services = compose_config()

    assert set(services) == BASE_SERVICES
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "ping" in services["redis"]["healthcheck"]["test"]
    assert services["redis"]["image"].startswith("redis:7")


@pytest.mark.parametrize("app", APP_SERVICES, ids=lambda app: app.name)
def test_app_service_is_built_wired_and_persistent(
    compose_config: RunConfig, app: AppService
) -> None:
    service = compose_config()[app.name]

    assert Path(service["build"]["context"]).resolve() == ROOT
    assert (ROOT / service["build"]["dockerfile"]).resolve() == app.dockerfile
    assert app.dockerfile.is_file()
    assert health_url(service["healthcheck"]["test"]) == f"http://127.0.0.1:{app.port}/health"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"

    expected_ports = {(port, port) for port in (app.port, *app.extra_ports)}
    assert published_ports(service) == expected_ports

    volumes = mounts(service)
    assert volumes["/data"] == f"{app.name}-data"
    assert volumes["/secrets"] == "veze-secrets"

    environment = service["environment"]
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    assert environment["VEZE_SERVICE_PORTAL"] == "http://portal:8000"
    assert environment["VEZE_SERVICE_GAME"] == "http://game:8002"
    assert environment["VEZE_SERVICE_EMAIL"] == "http://email:8004"
    assert environment["VEZE_JWT_ISS"] == "http://localhost:8000"
    assert environment["VEZE_SECRETS_DIR"] == "/secrets"
    assert environment["VEZE_VAR_DIR"] == "/data"
    # Game and Email verify the portal's tokens through its JWKS, on the compose network.
    if app.name == "portal":
        assert "VEZE_JWKS_URL" not in environment
    else:
        assert environment["VEZE_JWKS_URL"] == "http://portal:8000/.well-known/jwks.json"
    # Empty means "the SQLite default under /data" (see e.g. VEZEPyEmail/app/settings.py).
    assert environment[app.db_env] in ("", None)
    # A service gets only its own database URL.
    other_db_envs = {other.db_env for other in APP_SERVICES} - {app.db_env}
    assert not other_db_envs & set(environment)


def test_postgres_profile_adds_postgres_and_points_the_services_at_it(
    compose_config: RunConfig,
) -> None:
    services = compose_config(profile="postgres", env_file=POSTGRES_ENV)

    assert set(services) == BASE_SERVICES | {"postgres"}
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    init_scripts = {
        target: source
        for target, source in mounts(postgres).items()
        if target.startswith("/docker-entrypoint-initdb.d/")
    }
    assert [Path(source).resolve() for source in init_scripts.values()] == [POSTGRES_INIT]

    created = set(re.findall(r"CREATE DATABASE (\w+)", POSTGRES_INIT.read_text()))
    for app in APP_SERVICES:
        url = services[app.name]["environment"][app.db_env]
        assert url == f"postgresql+asyncpg://veze:veze@postgres:5432/{app.database}"
        assert app.database in created
        assert services[app.name].get("healthcheck", {}).get("test")


def test_postgres_env_file_matches_the_compose_defaults() -> None:
    values = env_file_values(POSTGRES_ENV)

    assert set(values) == {"POSTGRES_PASSWORD", *(app.db_env for app in APP_SERVICES)}
    for app in APP_SERVICES:
        assert f":{values['POSTGRES_PASSWORD']}@postgres:5432/" in values[app.db_env]


# ---- Dockerfiles ----------------------------------------------------------------------------


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    return instructions


def asgi_targets() -> dict[str, str]:
    entries = json.loads(SERVICES_JSON.read_text())["services"]
    return {entry["name"]: entry["asgi"] for entry in entries}


@pytest.mark.parametrize("app", APP_SERVICES, ids=lambda app: app.name)
def test_dockerfile_runs_the_service_unprivileged(app: AppService) -> None:
    instructions = dockerfile_instructions(app.dockerfile)
    keywords = [keyword for keyword, _ in instructions]

    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert keywords.count("CMD") == 1
    before_cmd = instructions[: keywords.index("CMD")]
    users = [arguments for keyword, arguments in before_cmd if keyword == "USER"]
    assert users, f"{app.dockerfile.name} never leaves root"
    user, _, group = users[-1].partition(":")
    assert user not in ("root", "0") and group not in ("root", "0"), users[-1]
    # Numeric, so a runtime can check "not root" without the image's /etc/passwd.
    assert users[-1] == "10001:10001"

    runs = " ".join(arguments for keyword, arguments in instructions if keyword == "RUN")
    assert re.search(r"groupadd [^&]*--gid 10001 veze\b", runs), "no veze group with gid 10001"
    assert re.search(r"useradd [^&]*--uid 10001 [^&]*\bveze\b", runs), "no veze user, uid 10001"
    assert "pip install --no-cache-dir --no-deps -e ." in runs
    assert "chown veze:veze /data /secrets" in runs

    environment = " ".join(arguments for keyword, arguments in instructions if keyword == "ENV")
    assert "VEZE_VAR_DIR=/data" in environment
    assert "VEZE_SECRETS_DIR=/secrets" in environment

    exposed = {
        int(port.split("/")[0])
        for keyword, arguments in instructions
        if keyword == "EXPOSE"
        for port in arguments.split()
    }
    assert exposed == {app.port, *app.extra_ports}

    healthchecks = [arguments for keyword, arguments in instructions if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    _, _, exec_form = healthchecks[0].partition(" CMD ")
    assert health_url(json.loads(exec_form)) == f"http://127.0.0.1:{app.port}/health"

    command = json.loads(dict(instructions)["CMD"])
    assert command == [
        "uvicorn",
        asgi_targets()[app.name],
        # JSON log lines (VEZEPyCore/observability/log_config.py), as the Procfile runs it.
        "--log-config",
        f"VEZEPyCore/observability/logging/{app.name}.json",
        "--host",
        "0.0.0.0",  # noqa: S104 - the container's own interface; the port is published by compose
        "--port",
        str(app.port),
        "--proxy-headers",
    ]


def test_dockerfiles_share_everything_before_the_service_specific_part() -> None:
    """Identical leading layers let the three images share the build cache."""
    prefixes = set()
    for app in APP_SERVICES:
        text = app.dockerfile.read_text()
        marker = f"# ---- {app.name}-specific from here on ----"
        assert marker in text
        head = text.split(marker)[0]
        prefixes.add(re.sub(r"^#.*\n", "", head, flags=re.MULTILINE))
    assert len(prefixes) == 1


def test_dockerignore_keeps_local_state_out_and_the_project_in() -> None:
    patterns = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }

    assert {".venv", "var", ".git", "**/*.db", "**/__pycache__"} <= patterns
    needed = {"README.md", "pyproject.toml", "config", "VEZEPyCore", "VEZEPyEmail"}
    assert not needed & patterns
    assert not any(pattern.startswith("!") for pattern in patterns)
