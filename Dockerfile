# dcs-backup-bot: the Slack app that backs up DCS (managed Redis) instances.
#
#   docker build -t dcs-backup-bot .
#   docker run -d --name dcs-bot --env-file .env -p 3000:3000 --stop-timeout 60 \
#     -v dcs-bot-data:/data -v "$PWD/config:/config:ro" dcs-backup-bot
#
# /config holds policy.toml (mount the directory, so that an edited file is seen on SIGHUP).
#
# No secret is baked in: tokens and keys come from the environment at run time.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: build the wheel and install it with its dependencies into a virtual environment --------
FROM ${PYTHON_IMAGE} AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
RUN python -m venv /opt/venv

# Only what the package build needs (pyproject names README.md as the long description).
COPY pyproject.toml README.md ./
COPY bot ./bot
RUN /opt/venv/bin/pip install --no-cache-dir . \
    && /opt/venv/bin/dcs-bot --help > /dev/null

# --- runtime: the venv on a clean base, run as an unprivileged user -----------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="dcs-backup-bot" \
      org.opencontainers.image.description="Slack app that backs up Open Telekom Cloud / Huawei Cloud DCS (managed Redis) instances"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    BOT_DATABASE=/data/dcs-bot.sqlite3 \
    BOT_POLICY=/config/policy.toml \
    PORT=3000

RUN groupadd --system --gid 10001 dcsbot \
    && useradd --system --uid 10001 --gid dcsbot --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin dcsbot \
    && mkdir -p /data /config \
    && chown dcsbot:dcsbot /data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001

# The SQLite database (requests, audit trail, tracking) lives here; keep it on a local volume.
VOLUME ["/data"]
EXPOSE 3000

# Liveness only: /livez answers while the process serves and asks nobody (not DCS, IAM, Slack or the
# database), so an outage elsewhere never gets the container restarted. It is on BOT_OPS_PORT when that
# is set, else on PORT. Slim images have no curl; python's urllib fails (non-zero exit) on a refused
# connection or an error status.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % (os.environ.get('BOT_OPS_PORT') or os.environ.get('PORT', '3000')), timeout=4)"]

# SIGTERM makes the bot stop taking work and let in-flight DCS calls finish; give it time (--stop-timeout).
STOPSIGNAL SIGTERM
ENTRYPOINT ["dcs-bot"]
CMD ["serve"]
