# syntax=docker/dockerfile:1
# WaveCD: one image for every role (worker, beat, API/webhook server, Flower). The role is chosen by
# the command (see compose.yaml and k8s/base), so all roles always run the same code at the same version.
#
# Build:  docker build -t wavecd:dev .
# The lock file `constraints.txt` is made by `pip freeze --exclude-editable --exclude wavecd` in the dev
# virtualenv, so every build resolves exactly the versions the tests ran against.

ARG PYTHON_VERSION=3.11
ARG KUSTOMIZE_VERSION=5.5.0

# ---- kustomize: shared/kustomize.py renders Argo CD's kustomize sources with this binary ---------------
# The official release, checked against the release's own checksum list.
FROM debian:bookworm-slim AS kustomize
ARG KUSTOMIZE_VERSION
ARG TARGETARCH=amd64
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /tmp/kustomize
RUN tarball="kustomize_v${KUSTOMIZE_VERSION}_linux_${TARGETARCH}.tar.gz" \
    && base="https://github.com/kubernetes-sigs/kustomize/releases/download/kustomize%2Fv${KUSTOMIZE_VERSION}" \
    && curl -fsSLO "${base}/${tarball}" \
    && curl -fsSLO "${base}/checksums.txt" \
    && grep " ${tarball}\$" checksums.txt | sha256sum -c - \
    && tar -xzf "${tarball}" -C /usr/local/bin kustomize \
    && /usr/local/bin/kustomize version

# ---- build stage: a virtualenv with WaveCD and its locked dependencies --------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# pygit2, lupa and jq ship manylinux wheels, so no compiler is needed. Only the packages are copied:
# tests, bench/ and local files stay out (see .dockerignore).
COPY constraints.txt pyproject.toml README.md ./
COPY shared/ shared/
COPY workers/ workers/
COPY scheduler/ scheduler/
COPY sandbox/ sandbox/
RUN pip install -c constraints.txt . \
    && python -m compileall -q /opt/venv

# ---- runtime stage: no build tools, no source tree, a non-root user -----------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
# tini is PID 1: it forwards SIGTERM to Celery (warm shutdown) and reaps the processes that exec probes
# such as `celery inspect ping` leave behind. Debian's package is not version-pinned: bookworm's archive
# keeps only the current security release, so a pin would break the build at the next point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 wavecd \
    && useradd --system --uid 10001 --gid wavecd --home-dir /var/lib/wavecd --no-create-home \
       --shell /usr/sbin/nologin wavecd \
    && mkdir -p /var/lib/wavecd /var/cache/wavecd/git /data \
    && chown -R 10001:10001 /var/lib/wavecd /var/cache/wavecd /data
COPY --from=build /opt/venv /opt/venv
COPY --from=kustomize /usr/local/bin/kustomize /usr/local/bin/kustomize
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/wavecd \
    WAVECD_HOME=/var/lib/wavecd \
    WAVECD_GIT_CACHE_DIR=/var/cache/wavecd/git
# Numeric user so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/wavecd
# /var/lib/wavecd (home, beat schedule), /var/cache/wavecd (git cache), /data (Flower state) and /tmp are
# the only places written to, so the root filesystem can be mounted read-only. No VOLUME instruction:
# compose and Kubernetes mount what each role needs, and anonymous volumes would only pile up.
EXPOSE 8080 5555
ENTRYPOINT ["/usr/bin/tini", "--"]
# No HEALTHCHECK here: each role has its own (compose.yaml, k8s probes). The default role is the API.
CMD ["wavecd", "serve", "--host", "0.0.0.0", "--port", "8080"]
