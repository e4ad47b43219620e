#!/usr/bin/env bash
# Creates .venv with Python 3.11 and installs the pinned dependencies of
# requirements.lock into it. Re-running it is cheap: it does nothing when the
# environment already matches the lock file.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3.11}"
UV_VERSION="0.13.9"

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup.sh: '$PYTHON' not found; install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.requirements.sha256"
# The lock file's hash, and how the environment was made: an environment synced
# before --compile-bytecode was added here is synced once more, to compile it.
want="$(sha256sum requirements.lock | cut -d' ' -f1) bytecode"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
# --compile-bytecode: uv installs no .pyc files, and where PYTHONDONTWRITEBYTECODE
# is set (or the environment is read-only) every process compiles what it imports
# from source again: 10-15 s of CPU for `import tensorflow` alone instead of 5.
# The tests start dozens of such processes.
.venv/bin/python -m uv pip sync --quiet --compile-bytecode --python .venv/bin/python \
  --require-hashes requirements.lock
echo "$want" > "$stamp"
