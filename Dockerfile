# syntax=docker/dockerfile:1.7
#
# rtb-gateway container image.
#
#   docker build -t rtb-gateway .
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp rtb-gateway   # real upstreams
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp rtb-gateway serve --sandbox
#   docker run --rm rtb-gateway check-config
#
# Build stage: uv installs the locked, non-dev dependencies and the project itself
# (not editable) into /opt/venv, and strips the debug symbols from its compiled
# extensions (uvloop's wheel alone carries ~12 MB of them). Runtime stage: the same
# Python base image, with only that virtualenv copied in, running as an unprivileged
# user. The gateway is PID 1 (exec form, no shell wrapper), so it receives SIGTERM
# itself and drains (docs: operations).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
# strip(1), for this stage only. The apt lists and archives live in cache mounts, so
# nothing of apt's lands in a layer. Unpinned (DL3008): binutils never reaches the
# image, and whichever bookworm build of strip runs, the runtime stage is the same.
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/var/cache/apt,sharing=locked \
    --mount=type=cache,target=/var/lib/apt/lists,sharing=locked \
    rm -f /etc/apt/apt.conf.d/docker-clean \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends binutils \
        > /dev/null
# Compile bytecode at build time (the runtime never writes .pyc: read-only root FS),
# copy instead of hard-linking from the cache mount, never download a Python: use the
# base image's, at the same path the runtime stage has.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-install-project
COPY README.md ./
COPY gateway ./gateway
# --strip-debug keeps the symbol tables (perf and gdb still name functions); the
# import check after it proves every stripped extension still loads.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable \
 && find /opt/venv -name '*.so' -type f -exec strip --strip-debug {} + \
 && /opt/venv/bin/python -c 'import uvloop, httptools, hiredis, msgspec, gateway.app' \
 && /opt/venv/bin/gateway --help > /dev/null

FROM ${PYTHON_IMAGE} AS runtime
ARG APP_UID=10001
LABEL org.opencontainers.image.title="rtb-gateway" \
      org.opencontainers.image.description="Front door for Retreaver pay-per-call RTB: validation, ping shield, forwarding, Core API lookups" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid "${APP_UID}" gateway \
 && useradd --system --uid "${APP_UID}" --gid gateway --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin gateway
# Owned by root and not writable by the gateway user: nothing at run time writes here.
COPY --from=build /opt/venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONFAULTHANDLER=1
USER ${APP_UID}:${APP_UID}
EXPOSE 8080
STOPSIGNAL SIGTERM
# No curl in the image: the standard library asks /healthz. urlopen raises on a refused
# connection, a timeout or a non-2xx answer, so the exit code is 0 only when healthy.
# GATEWAY_PORT only matters when the port is changed through the environment.
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_PORT', '8080'), timeout=2)"]
ENTRYPOINT ["gateway"]
CMD ["serve"]
