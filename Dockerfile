# One image for the five services and their migrations; the command chooses which runs:
#   python -m ticketing_common.serve auth_service     (the server's flags live in that module)
#   python -m ticketing_common.migrations auth_service booking_service ...
# docker-compose.yml and deploy/k8s run it exactly so.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- runtime dependencies, in their own layer: a code change does not reinstall them
FROM ${PYTHON_IMAGE} AS dependencies
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /build
COPY pyproject.toml ./
RUN python -c "import tomllib; print(*tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies'], sep='\n')" \
        > requirements.txt \
    && /opt/venv/bin/pip install -r requirements.txt

# ---- the image
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    HOST=0.0.0.0 \
    MAIL_DIR=/data/mail \
    UPLOAD_DIR=/data/uploads
# TrueType fonts for the PDF tickets: DejaVu (Latin, Greek, Cyrillic) and Abyssinica SIL
# (Ethiopic, for Amharic), where notification_service looks by default (TICKET_FONT_DIRS).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-dejavu-core fonts-sil-abyssinica \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /data/mail /data/uploads \
    && chown -R app:app /data
COPY --from=dependencies /opt/venv /opt/venv
WORKDIR /app
# The source tree as it is (migrations/versions are plain folders, not packages), owned
# by root and compiled ahead, so the service user cannot change its own code.
COPY ticketing_common ./ticketing_common
COPY auth_service ./auth_service
COPY booking_service ./booking_service
COPY event_service ./event_service
COPY payment_service ./payment_service
COPY notification_service ./notification_service
RUN python -m compileall -q /app
USER app:app
VOLUME ["/data"]
EXPOSE 3001 3002 3003 3004 3005
CMD ["sh", "-c", "echo 'choose what to run, e.g.: python -m ticketing_common.serve auth_service' >&2; exit 64"]
