#!/usr/bin/env bash
# Print the path of the Python the controller venv is built with.
#   - FTPSKIT_PYTHON, when set, is used as it is (it must be 3.11+ with venv);
#   - else the newest Python >= 3.12 on PATH (python3.13, python3.12) or in pyenv's versions:
#     ansible-core 2.20/2.21;
#   - else Debian 12's own python3 (3.11): ansible-core 2.19, the newest that supports it
#     (pyproject.toml's range lets pip choose the version per interpreter).
# A stock Debian 12 machine (no pyenv) takes the last branch; `make test` also builds a venv from
# /usr/bin/python3.11 on purpose to test that path (make test-stock).
set -euo pipefail
usable() { "$1" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 11)' 2>/dev/null; }

if [[ -n ${FTPSKIT_PYTHON:-} ]]; then
  usable "$FTPSKIT_PYTHON" && { echo "$FTPSKIT_PYTHON"; exit 0; }
  echo "find-python: FTPSKIT_PYTHON=$FTPSKIT_PYTHON is not a Python >= 3.11 with venv and ensurepip" >&2
  exit 1
fi
for cand in python3.13 python3.12; do
  if p=$(command -v "$cand" 2>/dev/null) && "$p" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null \
    && usable "$p"; then
    echo "$p"; exit 0
  fi
done
root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
for p in $(ls -d "$root"/versions/3.1[3-9]*/bin/python3 "$root"/versions/3.12*/bin/python3 2>/dev/null | sort -rV); do
  if "$p" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null && usable "$p"; then
    echo "$p"; exit 0
  fi
done
for p in /usr/bin/python3 "$(command -v python3 2>/dev/null || true)"; do
  [[ -n $p ]] && usable "$p" && { echo "$p"; exit 0; }
done
echo "find-python: no Python >= 3.11 with venv found (PATH, pyenv, /usr/bin/python3); on Debian: apt-get install python3-venv" >&2
exit 1
