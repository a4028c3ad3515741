# syntax=docker/dockerfile:1
# The madrasa image: `madrasa serve` by default; `madrasa worker`, `madrasa migrate`, `madrasa purge`, … as arguments.
#
# Three stages on one base: `builder` builds the wheels (compilers live there only) and installs them into a
# virtual environment; `fonts` takes the four report-card fonts out of Debian's fonts-noto-core; the final
# stage copies both onto the bare base and runs as an unprivileged user with a fixed uid (10001).
#
# The base is pinned by exact tag. A release build may pin it by digest as well, with
#   --build-arg PYTHON_IMAGE=python:3.12.12-slim-bookworm@sha256:<digest>
ARG PYTHON_IMAGE=python:3.12.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# Wheels exist for every dependency on amd64/arm64; the compiler is here for a platform where one must be built.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY plugins ./plugins
COPY tenants ./tenants
COPY admin_ui ./admin_ui
COPY devtools ./devtools
RUN pip wheel --wheel-dir /wheels . \
 && python -m venv /opt/madrasa \
 && /opt/madrasa/bin/pip install --no-index --find-links /wheels madrasa \
 && /opt/madrasa/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE} AS fonts
# Noto Sans and Noto Naskh Arabic, regular and bold (plugins/grades/bulletins/fonts.py), with their licence:
# about 1.4 MB instead of the package's 42 MB.
RUN apt-get update \
 && apt-get install -y --no-install-recommends fonts-noto-core \
 && mkdir /fonts \
 && cd /usr/share/fonts/truetype/noto \
 && cp NotoSans-Regular.ttf NotoSans-Bold.ttf NotoNaskhArabic-Regular.ttf NotoNaskhArabic-Bold.ttf /fonts/ \
 && cp /usr/share/doc/fonts-noto-core/copyright /fonts/COPYRIGHT \
 && rm -rf /var/lib/apt/lists/*

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="madrasa" \
      org.opencontainers.image.description="A multi-tenant national school information system" \
      org.opencontainers.image.licenses="AGPL-3.0-or-later"
RUN groupadd --system --gid 10001 madrasa \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/madrasa --no-create-home \
      --shell /usr/sbin/nologin madrasa \
 && install --directory --owner 10001 --group 10001 --mode 0750 /var/lib/madrasa
COPY --from=builder /opt/madrasa /opt/madrasa
COPY --from=fonts /fonts /usr/share/fonts/madrasa
# MADRASA_DATA_DIR: exports and archives waiting for download (a volume in Kubernetes); the prepared fonts are
# cached under /tmp, so the root file system can be mounted read-only.
ENV PATH=/opt/madrasa/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MADRASA_DATA_DIR=/var/lib/madrasa \
    MADRASA_FONT_DIR=/usr/share/fonts/madrasa \
    MADRASA_FONT_CACHE=/tmp/madrasa-fonts \
    MADRASA_HOST=0.0.0.0 \
    MADRASA_PORT=8000
WORKDIR /var/lib/madrasa
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["madrasa"]
CMD ["serve"]
