# syntax=docker/dockerfile:1.7
# picture-migrate (the one-shot migration image for docker-compose): build from the workspace root:
#   docker build -f deploy/docker/migrate.Dockerfile -t ghcr.io/picture-dev/picture-migrate:0.1.0 .
# Stage 1 installs the locked dependencies of this one workspace member into /app/.venv
# (non-editable, so the runtime stage needs no source tree); stage 2 is the slim runtime.
# Base images are pinned by tag; pin by digest as well when your registry mirror allows it.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.14-slim-bookworm AS build
COPY --from=uv /uv /uvx /bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (cached layer): only the lock file and every member's pyproject.toml.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/pyproject.toml
COPY services/catalog/pyproject.toml services/catalog/pyproject.toml
COPY services/gateway/pyproject.toml services/gateway/pyproject.toml
COPY services/media/pyproject.toml services/media/pyproject.toml
COPY services/orchestrator/pyproject.toml services/orchestrator/pyproject.toml
COPY services/replicate-adapter/pyproject.toml services/replicate-adapter/pyproject.toml
COPY tools/devstack/pyproject.toml tools/devstack/pyproject.toml
COPY tools/replicate-simulator/pyproject.toml tools/replicate-simulator/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package picture-catalog --package picture-orchestrator --package picture-replicate-adapter --package picture-media --package picture-gateway --no-install-workspace
# Then the sources of the workspace members, installed non-editable.
COPY libs ./libs
COPY services ./services
COPY tools ./tools
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package picture-catalog --package picture-orchestrator --package picture-replicate-adapter --package picture-media --package picture-gateway --no-editable

FROM python:3.11.14-slim-bookworm AS runtime
LABEL org.opencontainers.image.source="https://github.com/picture-dev/picture" \
      org.opencontainers.image.title="picture-migrate"
RUN groupadd --system --gid 10001 picture \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin picture
COPY --from=build --chown=root:root /app/.venv /app/.venv
# Read-only root filesystem friendly: nothing is written outside /tmp (mount an emptyDir there).
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp
WORKDIR /tmp
# One-shot job: nothing to probe.
HEALTHCHECK NONE
USER 10001:10001
CMD ["sh", "-c", "picture-catalog migrate && picture-orchestrator migrate && picture-replicate-adapter migrate && picture-media migrate && picture-gateway migrate"]
