#!/usr/bin/env bash
# Create (once) and refresh (when pyproject.toml changes) the project's virtual environment.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then
  py=$(scripts/find-python.sh)
  echo "creating $venv with $py" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv"
fi
stamp="$venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e ".[dev]"
  rm -f "$venv"/.installed-*
  touch "$stamp"
fi
