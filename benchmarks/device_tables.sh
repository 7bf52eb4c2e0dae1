#!/usr/bin/env bash
# Issue 16's tables in one device call (one H200, 16 cores): a realistic cohort made on the machine, every
# arm of pipelines/experiment_tables.yaml trained as its own process on the one GPU (same shards), killed at
# a training deadline if still running (finished epochs are kept: --accept-interrupted), then one paired
# comparison per table, in parallel. Writes 4 files to OUTDIR: cohort.txt, train_logs.txt, runs.tar.gz
# (metrics.csv, run_info.json, done.json of every run) and tables.tar.gz (comparison json/md per table).
# Usage: benchmarks/device_tables.sh OUTDIR [PATIENTS] [EPOCHS] [TRAIN_END_S] [COMPARE_END_S]
#   TRAIN_END_S / COMPARE_END_S: seconds after the start by which training / comparing must end.
#   Env: SPEC (default pipelines/experiment_tables.yaml), DEVICE (cuda), WORKDIR (/dev/shm/tables),
#   TABLES (default "1 3 4 5"; 2 adds the samplers; set and empty: table 1's base arms only): which tables to train and compare,
#   BASE_ARMS (default "multi_task task_aware cotask") and BASE_SEEDS ("0 1 2"): table 1's arms, always trained;
#   COHORT_S (default 120): the cohort's time limit (300,000 records: ~250 s);
#   SEEDED (default none): tables among 2-5 whose arms train seeds 0-2 (else seed 0) and compare over them.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/out}; patients=${2:-20000}; epochs=${3:-10}; train_end=${4:-280}; compare_end=${5:-375}
spec=${SPEC:-pipelines/experiment_tables.yaml}; dev=${DEVICE:-cuda}; W=${WORKDIR:-/dev/shm/tables}
tables=" ${TABLES-1 3 4 5} "; want() { [[ "$tables" == *" $1 "* ]]; }
seeded=" ${SEEDED:-} "; seeds_of() { if [[ "$seeded" == *" $1 "* ]]; then echo "0 1 2"; else echo 0; fi; }
csv_seeds() { seeds_of "$1" | tr ' ' ','; }
t0=$(date +%s)
since() { echo $(( $(date +%s) - t0 )); }
left() { local v=$(( $1 - $(since) )); (( v < 5 )) && v=5; echo $v; }
workers=$(python3 -c 'import os; print(len(os.sched_getaffinity(0)))')  # not nproc: it obeys OMP_NUM_THREADS
export OMP_NUM_THREADS=1
rm -rf "$W"; mkdir -p "$out" "$W/logs" "$W/cmp"
{ echo "cores $workers"; nvidia-smi -L 2>/dev/null; python3 -c 'import torch; print("torch", torch.__version__)'; } \
    > "$out/cohort.txt" 2>&1
timeout "${COHORT_S:-120}" python3 benchmarks/scale_run.py --patients "$patients" --workers "$workers" --out "$W/exp" \
    --raw-dir "$W/raw" --fs 250 --synth-fs 250 --difficulty realistic --keep 2>&1 | tail -1 >> "$out/cohort.txt"
python3 - "$W" >> "$out/cohort.txt" 2>&1 <<'PY'
import json, sys
import numpy as np
from ecgkit.data import ShardDataset
shards = sys.argv[1] + "/exp/shards"
out = {}
for split in ("train", "val", "test"):
    ds = ShardDataset(shards, split)
    y = np.asarray(ds.labels)
    out[split] = {"records": int(len(y)), "positives": dict(zip(ds.label_names, (y == 1).sum(axis=0).tolist()))}
print("SPLITS", json.dumps(out))
PY
rm -rf "$W/raw"
echo "cohort ready at $(since) s" >> "$out/cohort.txt"
S=$W/exp/shards; E=$W/runs
run_train() {  # arm seed [task]
  local extra=() name="$1_$2"
  if [[ -n "${3:-}" ]]; then extra=(--only-tasks "$3"); name="$1_$2_$3"; fi
  timeout --signal=TERM "$(left "$train_end")" python3 pipelines/run_experiment.py "$spec" "$S" --out "$E" \
      --device "$dev" --epochs "$epochs" --arms "$1" --seeds "$2" --train-only "${extra[@]}" \
      > "$W/logs/train_$name.txt" 2>&1 &
}
base_arms=${BASE_ARMS:-multi_task task_aware cotask}; base_seeds=${BASE_SEEDS:-0 1 2}
for arm in $base_arms; do for seed in $base_seeds; do run_train $arm $seed; done; done
if want 1; then for task in LVH 1AVB APC; do run_train single_task 0 $task; done; fi
train_table() {  # table arms...
  local t=$1 arm seed; shift
  for arm in "$@"; do for seed in $(seeds_of "$t"); do run_train "$arm" "$seed"; done; done
}
want 3 && train_table 3 cotask_dwa cotask_uncertainty
want 4 && train_table 4 multi_task_noise10 multi_task_noise30 multi_task_noise50 cotask_noise10 cotask_noise30 cotask_noise50
want 2 && train_table 2 sampler_major_task sampler_inverse sampler_inverse_log sampler_sqrt sampler_no_class_weight sampler_ucsf
want 5 && train_table 5 cotask_aux4 cotask_aux8 cotask_aux32
( while (( $(since) < train_end )); do sleep 30
    echo "gpu at $(since) s: $(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null)"
    echo "load at $(since) s: $(cut -d' ' -f1-3 /proc/loadavg)"; done >> "$out/cohort.txt" ) &
mon=$!
wait $(jobs -p | grep -v "^$mon$")
kill "$mon" 2>/dev/null
echo "training ended at $(since) s" >> "$out/cohort.txt"
for f in "$W"/logs/train_*.txt; do echo "== $f"; grep -E "epoch .* done|early stop|Error|error|Traceback" "$f" | tail -12
  tail -1 "$f"; done > "$out/train_logs.txt" 2>&1
compare() {  # name arms seeds
  local d=$W/cmp/$1 a s
  for a in ${2//,/ }; do mkdir -p "$d/$a"; for s in ${3//,/ }; do ln -sfn "$E/$a/seed-$s" "$d/$a/seed-$s"; done; done
  timeout "$(left "$compare_end")" python3 pipelines/run_experiment.py "$spec" "$S" --out "$d" --device "$dev" \
      --epochs "$epochs" --arms "$2" --seeds "$3" --accept-interrupted > "$W/logs/compare_$1.txt" 2>&1
  echo "compare $1 rc $? at $(since) s" >> "$out/cohort.txt"
}
compare t1 "$(echo $base_arms | tr ' ' ',')" "$(echo $base_seeds | tr ' ' ',')" &
want 1 && compare t1_single multi_task,task_aware,cotask,single_task 0 &
want 3 && compare t3_weighting cotask,cotask_dwa,cotask_uncertainty "$(csv_seeds 3)" &
for n in 10 30 50; do want 4 && compare t4_noise$n multi_task_noise$n,cotask_noise$n "$(csv_seeds 4)" & done
want 2 && compare t2_samplers multi_task,sampler_major_task,task_aware,sampler_inverse,sampler_inverse_log,sampler_sqrt,sampler_no_class_weight,sampler_ucsf "$(csv_seeds 2)" &
want 5 && compare t5_aux task_aware,cotask_aux4,cotask_aux8,cotask,cotask_aux32 "$(csv_seeds 5)" &
wait
for f in "$W"/logs/compare_*.txt; do echo "== $f"; grep -E "Error|error|Traceback|interrupted" "$f" | tail -5; tail -1 "$f"
  done >> "$out/train_logs.txt" 2>&1
(cd "$W/cmp" && tar czf "$out/tables.tar.gz" */comparison.json */comparison.md 2>/dev/null)
[[ -d "$E" ]] && (cd "$E" && tar czf "$out/runs.tar.gz" $(find . -name metrics.csv -o -name run_info.json -o -name done.json) 2>/dev/null)
echo "all done at $(since) s" >> "$out/cohort.txt"
