#!/usr/bin/env bash
# Issue 17 on one H200: two realistic synthetic cohorts, 4 arms x 3 seeds as concurrent processes, the table.
# Usage: benchmarks/device_cohorts.sh OUTDIR [PATIENTS_SCALE] [EPOCHS] [JOBS] [TIMEOUT_S] [RUN_LIMIT_S]
#   RUN_LIMIT_S (default: none): one training run's limit; a run still going is scored at its best epoch so far.
#   TIMEOUT_S (default 200): the whole pipeline's limit. Estimate from 58 s of training for 3 epochs at scale
#   0.6 (session 24): 30 epochs at scale 1.0 up to ~600 s; early stopping (patience 2) ends most runs sooner
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/out}; scale=${2:-1.0}; epochs=${3:-4}; jobs=${4:-8}; limit=${5:-200}; run_limit=${6:-}
mkdir -p "$out"
export OMP_NUM_THREADS=2
{ nproc --all; nvidia-smi -L; } > "$out/machine.txt" 2>&1
timeout "$limit" python3 pipelines/run_cohorts.py pipelines/experiment_cohorts.yaml --out /dev/shm/exp --device cuda \
    --jobs "$jobs" --workers 16 --patients-scale "$scale" --epochs "$epochs" ${run_limit:+--run-limit "$run_limit"} > "$out/run.txt" 2>&1
echo "rc $?" >> "$out/run.txt"
cp /dev/shm/exp/comparison.json /dev/shm/exp/comparison.md "$out/" 2>/dev/null
for f in /dev/shm/exp/logs/*.log; do echo "== $f"; tail -4 "$f"; done > "$out/train_logs.txt" 2>&1
python3 - > "$out/runs.json" 2>&1 <<'PY'
import json, glob
print(json.dumps({p: json.load(open(p)) for p in sorted(glob.glob("/dev/shm/exp/**/done.json", recursive=True))}, indent=1))
PY
python3 -c "
import pandas as pd; m = pd.read_parquet('/dev/shm/exp/shards/index.parquet'); print(m.groupby(['cohort','split']).size())" >> "$out/machine.txt" 2>&1
