#!/usr/bin/env bash
# Print the path of a Python interpreter >= 3.12, or explain what is missing and exit 1.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
for v in python3.12 python3.13 python3 python; do
  p=$(command -v "$v" 2>/dev/null) && candidates+=("$p")
done
# pyenv shims only run the selected version: look at the installed versions directly.
root=${PYENV_ROOT:-$HOME/.pyenv}
for p in "$root"/versions/3.12*/bin/python3 "$root"/versions/3.13*/bin/python3 \
         /usr/local/bin/python3.1[2-9] /usr/bin/python3.1[2-9] /opt/homebrew/bin/python3.1[2-9]; do
  [ -x "$p" ] && candidates+=("$p")
done
for c in "${candidates[@]}"; do
  if ok "$c"; then
    "$c" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
echo "error: zcollection-flight needs Python >= 3.12 (zarr >= 3.2 and icechunk 2 require it)." >&2
echo "       none found on PATH or under $root/versions; install one (e.g. 'pyenv install 3.12')" >&2
echo "       or point PYTHON=/path/to/python3.12 at it." >&2
exit 1
