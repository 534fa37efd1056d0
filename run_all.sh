#!/usr/bin/env bash
# The main job: execute every workbook notebook for one profile with papermill, render each to HTML
# (code hidden, figures inline), write the front page rendered/<profile>/index.html and the hand-in PDF
# rendered/<profile>/prunelab-<profile>.pdf (skipped, saying so, where no Chromium is installed).
#
#   ./run_all.sh [--profile smoke|quick|full] [--only NAME[,NAME...]] [--out DIR] [--result-dir DIR] [--params DIR]
#   ./run_all.sh --profile full --estimate     (runs, epochs, measured time per epoch, expected total; no training)
#   .venv/bin/python -m prunelab.workbook.pdf rendered/quick [--paper letter]   (the PDF again, A4 by default)
#
# --out defaults to rendered/<profile>, --params to params/<profile> (one YAML file per notebook).
# One notebook failing does not stop the others; the failed one is still rendered with its error, and
# the script ends non-zero naming it. Runs already in the result store are reused, never recomputed.
set -uo pipefail
cd "$(dirname "$0")"

profile=quick only="" out="" result_dir="" params_dir="" estimate=0
while [ $# -gt 0 ]; do
  case "$1" in
    --profile|--only|--out|--result-dir|--params)
      if [ $# -lt 2 ] || [ -z "$2" ]; then echo "run_all.sh: $1 needs a value (see --help)" >&2; exit 2; fi
      case "$1" in
        --profile) profile="$2" ;; --only) only="$2" ;; --out) out="$2" ;; --result-dir) result_dir="$2" ;;
        --params) params_dir="$2" ;;
      esac
      shift 2 ;;
    --estimate) estimate=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_all.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [[ ! "$profile" =~ ^[A-Za-z0-9_-]+$ ]]; then
  echo "run_all.sh: '$profile' is not a profile; profiles are: $(ls params | tr '\n' ' ')" >&2
  exit 2
fi
params_dir="${params_dir:-params/$profile}"
if [ ! -d "$params_dir" ]; then
  echo "run_all.sh: no parameter folder $params_dir; profiles are: $(ls params | tr '\n' ' ')" >&2
  exit 2
fi

bash scripts/ensure_venv.sh || { echo "run_all.sh: could not set up .venv" >&2; exit 1; }
py=.venv/bin/python
if [ "$estimate" = 1 ]; then
  "$py" -m prunelab.workbook.params "$params_dir" notebooks/[0-9][0-9]_*.ipynb || exit 2
  exec "$py" -m prunelab.workbook.estimate --profile "$profile" --params "$params_dir" \
    ${result_dir:+--result-dir "$result_dir"}
fi
notebooks=()
for nb in notebooks/[0-9][0-9]_*.ipynb; do
  name="$(basename "$nb" .ipynb)"
  if [ -n "$only" ]; then  # --only 01,03: the notebooks whose names contain any of the comma-separated parts
    match=0
    IFS=, read -ra parts <<< "$only"
    for part in "${parts[@]}"; do [ -n "$part" ] && [[ "$name" == *"$part"* ]] && match=1; done
    [ "$match" = 1 ] || continue
  fi
  notebooks+=("$nb")
done
if [ ${#notebooks[@]} -eq 0 ]; then
  echo "run_all.sh: no notebook matches --only '$only'" >&2
  exit 2
fi
# every parameter file is checked against its notebook before anything runs or is written
"$py" -m prunelab.workbook.params "$params_dir" "${notebooks[@]}" || exit 2
out="${out:-rendered/$profile}"
mkdir -p "$out"

ran=() failed=()
for nb in "${notebooks[@]}"; do
  name="$(basename "$nb" .ipynb)"
  params="$params_dir/$name.yaml"
  if [ ! -f "$params" ]; then
    echo "== $name: no $params, skipped"
    continue
  fi
  overrides=()
  [ -n "$result_dir" ] && overrides=(--result-dir "$result_dir")
  echo "== $name (profile $profile)"
  ran+=("$name")
  # the notebook appends a line per finished run to this file (its page shows one summary line); print it
  # as it grows, so a long cell shows progress here
  progress="$(mktemp)"
  tail -n +1 -f "$progress" &
  tailer=$!
  # papermill, with the kernel's connection encrypted (see lib/prunelab/workbook/execute.py)
  if ! PRUNELAB_PROGRESS_FILE="$progress" "$py" -m prunelab.workbook.execute "$nb" "$out/$name.ipynb" \
       --params "$params" "${overrides[@]}"; then
    failed+=("$name")
  fi
  sleep 0.3; kill "$tailer" 2>/dev/null; wait "$tailer" 2>/dev/null; rm -f "$progress"
  if [ -f "$out/$name.ipynb" ]; then
    "$py" -m prunelab.workbook.render "$out/$name.ipynb" --output-dir "$out" || failed+=("$name(render)")
  fi
done

if [ ${#ran[@]} -eq 0 ]; then
  echo "run_all.sh: no notebook ran: $params_dir holds none of their parameter files" >&2
  exit 2
fi
"$py" -m prunelab.workbook.index "$out" --profile "$profile" >/dev/null || failed+=("index.html")
# the hand-in PDF; exit code 3 is "no Chromium here": said in one line, not a failure
pdf="$("$py" -m prunelab.workbook.pdf "$out" 2>&1)"
case $? in
  0) ;;
  3) echo "run_all.sh: $pdf"; pdf="" ;;
  *) echo "$pdf" >&2; pdf=""; failed+=("pdf") ;;
esac
if [ ${#failed[@]} -gt 0 ]; then
  echo "run_all.sh: FAILED: ${failed[*]} (rendered with their errors in $out/)" >&2
  exit 1
fi
echo "run_all.sh: rendered ${ran[*]} into $out/ (open $out/index.html)"
if [ -n "$pdf" ]; then echo "run_all.sh: the hand-in PDF is $pdf"; fi
