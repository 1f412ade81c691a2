#!/usr/bin/env bash
# Print the path of a Python >= 3.12 for the controller venv (ansible-core 2.20+ needs it).
# Looks at the PATH first, then pyenv's versions; fails with a clear message if none exists.
set -euo pipefail
for cand in python3.13 python3.12; do
  if p=$(command -v "$cand" 2>/dev/null) && "$p" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null; then
    echo "$p"; exit 0
  fi
done
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for p in $(ls -d "$root"/versions/3.1[3-9]*/bin/python3 "$root"/versions/3.12*/bin/python3 2>/dev/null | sort -rV); do
  if "$p" -c 'import sys, venv; assert sys.version_info >= (3, 12)' 2>/dev/null; then
    echo "$p"; exit 0
  fi
done
echo "find-python: no Python >= 3.12 found (PATH or pyenv); ansible-core 2.20+ needs one on the controller" >&2
exit 1
