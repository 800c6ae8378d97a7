#!/usr/bin/env bash
# Installs everything skyfence needs on a fresh Debian machine of this kind, idempotently:
# apt packages (Redis, and a JDK/Maven only if missing), a virtualenv with the package and its
# test extras, and the Kafka jars from Maven Central into the git-ignored .cache/.
# Re-running it is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
# The checkout is the workdir of dev commands: the Kafka jars and the local stack live in its
# git-ignored .cache/ (which CI caches). The installed package itself defaults to a per-user folder.
export SKYFENCE_WORKDIR="${SKYFENCE_WORKDIR:-$PWD}"

log() { printf '[setup] %s\n' "$*" >&2; }

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# GDAL's ogrinfo: the independent reader the export test opens the GeoJSON and KML files with.
command -v ogrinfo >/dev/null 2>&1 || need_apt+=(gdal-bin)
# A real receiver without an antenna (--net-only): the receiver tests and `skyfence demo --receiver`
# feed it recorded frames and read its Beast/AVR/SBS/aircraft.json outputs (streams/receiver.py).
command -v dump1090-mutability >/dev/null 2>&1 || need_apt+=(dump1090-mutability)
if [ "${SKYFENCE_SETUP_BROWSER:-1}" = "1" ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    log "missing ${need_apt[*]}: install them with apt-get (needs root)"; exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  log "apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  # Debian's package may start a system redis on 6379; the project runs its own, so stop that one.
  if command -v service >/dev/null 2>&1; then $SUDO service redis-server stop >/dev/null 2>&1 || true; fi
  # Likewise dump1090-mutability's own service (it wants an RTL-SDR dongle); ours run --net-only.
  if command -v service >/dev/null 2>&1; then $SUDO service dump1090-mutability stop >/dev/null 2>&1 || true; fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.skyfence-installed
want=$(cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  # The exact versions (with hashes) the last green run tested: requirements.lock, made by
  #   uv pip compile pyproject.toml --extra test --extra report --generate-hashes \
  #     --python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock
  # then the package itself, without resolving anything again.
  log "pip install -r requirements.lock, then -e . --no-deps"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --require-hashes -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > "$stamp"
fi

.venv/bin/skyfence stack fetch >&2
