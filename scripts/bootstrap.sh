#!/usr/bin/env bash
# Install what the stack needs on Debian 12 (only what is missing) and the project's
# virtualenv. Safe to run any number of times; the up and test commands call it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
# fonts-*: TrueType fonts for the PDF tickets (DejaVu: Latin, Greek, Cyrillic; Abyssinica
# SIL: Ethiopic, for Amharic); notification_service looks for them under TICKET_FONT_DIRS.
for pkg in postgresql redis-server rabbitmq-server nginx-light python3-venv curl prometheus chromium chromium-driver docker-compose \
  fonts-dejavu-core fonts-sil-abyssinica; do
  have "$pkg" || need_pkgs+=("$pkg")
done
# nginx from any flavour of the Debian package will do.
if [[ " ${need_pkgs[*]-} " == *" nginx-light "* ]] && command -v nginx >/dev/null; then
  need_pkgs=("${need_pkgs[@]/nginx-light}")
fi
need_pkgs=($(printf '%s\n' "${need_pkgs[@]-}" | grep -v '^$' || true))
if ((${#need_pkgs[@]})); then
  echo "installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  # Debian starts these through systemd where it exists; devstack starts them otherwise.
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
# newman (Postman collection runner) for the API test, from the npm registry.
command -v npm >/dev/null || { apt-get update -qq; apt-get install -y -qq nodejs npm >/dev/null; }
[[ -x postman/node_modules/.bin/newman ]] || npm ci --prefix postman --silent --no-audit --no-fund

stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f $stamp ]]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
