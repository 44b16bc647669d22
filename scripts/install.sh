#!/usr/bin/env bash
# Create .venv (Python 3.11) and install the pinned, hash-checked dependency lock, then
# rasa and rasa-sdk with --no-deps (they declare Python <3.11 and pins that conflict with the
# working set; see README "Why rasa is installed with --no-deps"), then this package.
# Idempotent: a stamp of the lock files' checksum skips the work when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3.11}"
VENV=.venv
STAMP="$VENV/.council-install-stamp"
want=$(cat requirements/deps.lock requirements/rasa.lock pyproject.toml | sha256sum | cut -d' ' -f1)

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    echo "install: up to date ($VENV)"
    exit 0
fi

if ! "$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
    echo "install: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
    exit 1
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
# The lock is a complete, consistent set; --no-deps stops pip re-resolving rasa's stale ranges.
"${pip[@]}" install --require-hashes --no-deps -r requirements/deps.lock 2> >(grep -v "is ignored: it is neither a file" >&2)
"${pip[@]}" install --require-hashes --no-deps --ignore-requires-python -r requirements/rasa.lock 2> >(grep -v "is ignored: it is neither a file" >&2)
"${pip[@]}" install --no-deps --no-build-isolation -e . 2> >(grep -v "is ignored: it is neither a file" >&2)
"$VENV/bin/python" -m pip check >/dev/null 2>&1 || true  # rasa's declared ranges are known not to hold
echo "$want" > "$STAMP"
echo "install: done ($VENV)"
