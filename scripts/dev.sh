#!/usr/bin/env bash
# One entry point for a fresh Debian machine: set up what Axis needs, then run it.
#   scripts/dev.sh demo [ARGS...]   the live demo of the national axis
#   scripts/dev.sh test [ARGS...]   the whole test suite (real RabbitMQ and PostgreSQL)
# Set-up is idempotent and fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

python_env() {
  if [ ! -x "$VENV/bin/python" ]; then
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      echo "dev: installing python3-venv" >&2
      as_root apt-get update -qq && as_root apt-get install -y -qq python3-venv python3-pip >/dev/null
      python3 -m venv "$VENV"
    fi
  fi
  local stamp="$VENV/.installed"
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "dev: installing Axis and its dependencies into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e ".[dev]"
    touch "$stamp"
  fi
}

command=${1:-}
shift || true
case "$command" in
  demo)
    python_env
    bash scripts/services.sh
    exec "$VENV/bin/axis" demo "$@"
    ;;
  test)
    python_env
    bash scripts/services.sh --postgres
    "$VENV/bin/ruff" check .
    "$VENV/bin/mypy"
    exec "$VENV/bin/pytest" "$@"
    ;;
  *)
    echo "usage: scripts/dev.sh demo|test [ARGS...]" >&2
    exit 2
    ;;
esac
