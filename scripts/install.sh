#!/usr/bin/env bash
# Installs everything `make test` needs and is cheap to re-run: each step checks first.
#   scripts/install.sh            system packages (apt) + Python virtualenv
#   scripts/install.sh --python   only the virtualenv (what `make run` uses; no apt, no root)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3}"

log() { printf '\033[1m[install]\033[0m %s\n' "$*"; }

# PostgreSQL and Redis for the postgres/redis test passes, Chromium for the browser tests
# (Playwright drives /usr/bin/chromium; its own browser download is never used), fonts so
# screenshots show text, Caddy to run deploy/Caddyfile in tests/deploy/.
APT_PACKAGES=(postgresql redis-server chromium fonts-dejavu-core fonts-liberation caddy)

install_system_packages() {
    local missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "system packages present: ${APT_PACKAGES[*]}"
        return
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "install.sh: need root (or sudo) to apt-get install ${missing[*]}" >&2; exit 1; }
        sudo=(sudo)
    fi
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    # policy-rc.d 101: in containers without an init system, do not try to start the packaged
    # postgresql/redis services; the tests start their own throwaway servers.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
        "${sudo[@]}" chmod +x "$policy"
        created_policy=1
    fi
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
    if [ "$created_policy" -eq 1 ]; then "${sudo[@]}" rm -f "$policy"; fi
}

create_venv() {
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        return
    fi
    log "creating $VENV with $("$PYTHON" --version 2>&1)"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        # Debian's python3 without python3-venv has no ensurepip: make the venv bare and let the
        # interpreter's own pip install pip into it.
        rm -rf "$VENV"
        "$PYTHON" -m venv --without-pip "$VENV"
        "$PYTHON" -m pip --python "$VENV/bin/python" install -q pip
    fi
}

install_python_packages() {
    # Re-install only when pyproject.toml changed since the last successful install.
    local stamp="$VENV/.sade-installed" want
    want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
        && "$VENV/bin/python" -c "import engine, deploy, torch, django" 2>/dev/null; then
        log "python packages up to date ($VENV)"
        return
    fi
    local find_links=()
    # torch==2.13.0 comes from the local CPU wheel when there is one (a range or PyPI would
    # pull a multi-gigabyte CUDA build).
    if [ -d /opt/wheels ]; then find_links=(--find-links /opt/wheels); fi
    log "pip install -e '.[dev]' ${find_links[*]}"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${find_links[@]}" -e '.[dev]'
    echo "$want" >"$stamp"
}

if [ "${1:-}" != "--python" ]; then
    install_system_packages
fi
create_venv
install_python_packages
