# VEZE Game: matchmaking, matches, ratings and leaderboards
#
# Build from the repository root (the build context must be the root: the image installs the
# one pyproject.toml that holds all services):
#
#   docker build -f docker/game.Dockerfile -t veze-game .
#
# Everything up to the service-specific block at the end is identical in the three
# Dockerfiles, so the images share those layers in the build cache.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VEZE_VAR_DIR=/data \
    VEZE_SECRETS_DIR=/secrets

# An unprivileged user with fixed ids (so volume ownership is predictable), and the only two
# directories it may write: /data (databases, mail blobs) and /secrets (the generated dev
# HS256 key). An empty named volume mounted there starts with this ownership.
RUN groupadd --system --gid 10001 veze \
 && useradd --system --uid 10001 --gid veze --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin veze \
 && mkdir -p /data /secrets \
 && chown veze:veze /data /secrets \
 && chmod 0750 /data \
 && chmod 0700 /secrets

WORKDIR /app

# Dependencies in their own layer, rebuilt only when pyproject.toml changes.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The project itself, installed in place (editable) so that paths computed from the package
# location resolve inside /app: VEZEPyCore/services/registry.py reads
# Path(__file__).parents[2] / "config" / "services.json", i.e. /app/config/services.json.
# The code stays owned by root: the service user can read it but not change it.
COPY README.md ./
COPY config/ config/
COPY VEZEPyCore/ VEZEPyCore/
COPY VEZEPyUniQVerse/ VEZEPyUniQVerse/
COPY VEZEPyGame/ VEZEPyGame/
COPY VEZEPyEmail/ VEZEPyEmail/
RUN pip install --no-cache-dir --no-deps -e . \
 && python -c "from VEZEPyCore.services.registry import DEFAULT_SERVICES_FILE as f; assert str(f) == '/app/config/services.json' and f.is_file(), f"

# ---- game-specific from here on ----
LABEL org.opencontainers.image.title="veze-game" \
      org.opencontainers.image.description="VEZE Game: matchmaking, matches, ratings and leaderboards"

# Numeric, so that runtimes can verify "not root" without reading /etc/passwd
# (Kubernetes runAsNonRoot); 10001 is the veze user created above.
USER 10001:10001

EXPOSE 8002

# python:3.11-slim has no curl; urlopen raises (exit 1) on a refused connection or a non-2xx.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8002/health', timeout=3)"]

# --proxy-headers trusts X-Forwarded-* only from FORWARDED_ALLOW_IPS (uvicorn's default:
# 127.0.0.1); set that variable to the reverse proxy's address when one sits in front.
CMD ["uvicorn", "VEZEPyGame.app.main:app", "--log-config", "VEZEPyCore/observability/logging/game.json", "--host", "0.0.0.0", "--port", "8002", "--proxy-headers"]
