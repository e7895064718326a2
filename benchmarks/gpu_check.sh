#!/usr/bin/env bash
# The GPU check in one command, from any folder, with or without the project's .venv:
#   bash benchmarks/gpu_check.sh [--out PATH] [--sizes 512 1024] [--budget 250] ...   (see --help)
# Uses $PYTHON, else .venv/bin/python, else python3; runs the package from this checkout (no install needed)
# and says which libraries are missing before starting. Writes outputs/gpu_check.json by default.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
missing=$("$PYTHON" - <<'PY'
import importlib.util
names = ["torch", "torchvision", "PIL", "matplotlib", "numpy", "tqdm"]
print(" ".join(n for n in names if importlib.util.find_spec(n) is None))
PY
)
if [ -n "$missing" ]; then
  echo "error: $PYTHON lacks: $missing. Install them (pip install -e . or pip install -r requirements.txt) or set PYTHON=..." >&2
  exit 2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export MPLBACKEND="${MPLBACKEND:-Agg}"
exec "$PYTHON" benchmarks/gpu_check.py "$@"
