# mcp-service container image.
#
#   docker build -t mcp-service:0.1.0 .
#   docker run --rm -p 127.0.0.1:8000:8000 --read-only --tmpfs /tmp --cap-drop ALL \
#     --env-file deploy/ci.env mcp-service:0.1.0
#
# Two stages: `builder` creates a virtualenv in /opt/venv with the dependencies and the service
# (installed as a regular, non-editable package); the final stage copies only that venv onto a
# fresh slim base, so no pip cache, build tools or sources end up in the image.
#
# Base image: pinned by tag, Python minor and Debian release fixed (python 3.11, bookworm, slim).
# Not by digest, because (1) there is no registry reachable from CI here, so a digest could not be
# looked up or verified, and a wrong one breaks every real build; and (2) the offline CI check
# (../shared/deploy-check) builds on a local stand-in tagged python:3.11-slim*, which can only
# match a tag. To pin a digest in a release pipeline that can reach Docker Hub, pass it in:
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
# (`docker buildx imagetools inspect python:3.11-slim-bookworm` prints the current digest.)
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------------- builder
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, read from pyproject.toml, so this layer is reused until they change.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --no-cache-dir --requirement /tmp/requirements.txt

# Then the service itself (no dependency resolution: they are all installed above).
COPY app ./app
# pip compiles the bytecode at install time (the runtime root filesystem is read-only); pip and
# setuptools are then removed from the venv: nothing installs packages at run time.
RUN pip install --no-cache-dir --no-deps . \
    && python -m pip uninstall --yes --quiet pip setuptools

# ---------------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="mcp-service" \
      org.opencontainers.image.description="Remote MCP service (streamable HTTP at /mcp)" \
      org.opencontainers.image.licenses="MIT"

# A fixed numeric user/group (10001), so Kubernetes' runAsNonRoot can verify it and volume
# permissions (fsGroup) are predictable. No home directory, no login shell.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

# MCPS_HOST=0.0.0.0: reachable from outside the container. Authentication is on by default and
# the service refuses to start without credentials, so a deployment must set MCPS_API_KEYS or
# MCPS_JWT_* (as secrets, at run time). MCPS_AUTH_DISABLED / MCPS_ALLOW_UNAUTHENTICATED_PUBLIC_BIND
# are deliberately NOT set here (only dev/CI setups set them: deploy/ci.env, docker-compose.yml).
# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only at run time (bytecode is precompiled).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MCPS_HOST=0.0.0.0 \
    MCPS_PORT=8000

# Not writable by the app user: nothing is written at run time except /tmp (mount a tmpfs/emptyDir).
# A .env here would be read by the service; the image ships none (see .dockerignore).
WORKDIR /app
USER 10001:10001
EXPOSE 8000

# The process handles SIGTERM itself: readiness drops, drain (MCPS_DRAIN_DELAY_SECONDS, 5 s),
# then in-flight requests get MCPS_SHUTDOWN_TIMEOUT_SECONDS (30 s); give it a stop timeout > 35 s.
STOPSIGNAL SIGTERM

# python's urllib (the slim image has no curl); any non-2xx or connection error exits non-zero.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MCPS_PORT', '8000') + '/health/live', timeout=2)"]

CMD ["python", "-m", "app"]
