#!/usr/bin/env bash
# Creates .venv with prunelab installed (editable, with dev extras) unless it is already there and
# was made from the current pyproject.toml. Used by `make test` and run_all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${PRUNELAB_VENV:-.venv}"
stamp="$venv/.prunelab-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "Setting up $venv (first use, or pyproject.toml changed) ..." >&2
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e ".[dev,lab]"
# a named kernel inside the venv: papermill and JupyterLab run the notebooks with prunelab importable
"$venv/bin/python" -m ipykernel install --sys-prefix --name prunelab --display-name "Python (prunelab)" >/dev/null
echo "$want" > "$stamp"
