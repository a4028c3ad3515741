#!/usr/bin/env bash
# Make sure the services the tests use are running on 127.0.0.1, installing them on a fresh
# Debian machine. Prints `export …` lines for the caller to eval; messages go to stderr.
set -euo pipefail

say() { echo "ensure-services: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

PG_URL="${MADRASA_TEST_PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"

pg_ready() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }

if ! pg_ready; then
  if ! command -v pg_ctlcluster >/dev/null; then
    say "installing PostgreSQL from Debian's packages"
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq postgresql >&2
  fi
  version="$(ls /etc/postgresql | sort -V | tail -1)"
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  for _ in $(seq 1 30); do pg_ready && break; sleep 1; done
fi
pg_ready || { say "PostgreSQL is not reachable on 127.0.0.1:5432"; exit 1; }

# A fresh Debian cluster asks for a password on TCP: give the tests a superuser login of their own.
if ! psql "$PG_URL" -Atqc "SELECT 1" >/dev/null 2>&1; then
  say "creating a test superuser login (PostgreSQL does not trust local TCP connections here)"
  as_root su postgres -c "psql -qc \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'madrasa_ci') THEN CREATE ROLE madrasa_ci LOGIN SUPERUSER PASSWORD 'madrasa_ci'; END IF; END \\\$\\\$\"" >&2
  PG_URL="postgresql://madrasa_ci:madrasa_ci@127.0.0.1:5432/postgres"
fi
# Bulletins (PDF) need an Arabic-capable font.
scripts/ensure-fonts.sh

redis_ready() { command -v redis-cli >/dev/null && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }
if ! redis_ready; then
  if ! command -v redis-server >/dev/null; then
    say "installing Redis from Debian's packages"
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq redis-server >&2
  fi
  say "starting Redis"
  redis-server --bind 127.0.0.1 --port 6379 --daemonize yes --save '' --appendonly no >&2
  for _ in $(seq 1 30); do redis_ready && break; sleep 1; done
fi
redis_ready || { say "Redis is not reachable on 127.0.0.1:6379"; exit 1; }
echo "export MADRASA_TEST_REDIS_URL=redis://127.0.0.1:6379/0"

# Browser tests drive Debian's Chromium through Playwright (never a downloaded browser).
if [ ! -x /usr/bin/chromium ]; then
  say "installing Chromium from Debian's packages"
  as_root apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq chromium >&2
fi
echo "export MADRASA_TEST_PG_ADMIN_URL='$PG_URL'"
echo "export MADRASA_TEST_CHROMIUM=/usr/bin/chromium"
