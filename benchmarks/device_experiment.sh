#!/usr/bin/env bash
# The issue-16 GPU session (run by the `device` tool on one H200, 16 cores): a realistic synthetic cohort,
# the joint / task-aware / CO-TASK arms with 3 seeds each as 9 concurrent processes on the one GPU, the
# paired comparison and the task-aware diagnostics. wfdb, pydicom, pyahocorasick, lxml travel as wheels
# in .whl/. Usage: benchmarks/device_experiment.sh OUTDIR [PATIENTS] [EPOCHS]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/out}; patients=${2:-35000}; epochs=${3:-8}
mkdir -p "$out" /tmp/logs
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
{ nproc; nvidia-smi -L; python3 -c 'import torch, h5py, numba, pandas, pyarrow, sklearn; print("torch", torch.__version__)'; } \
    > "$out/cohort.txt" 2>&1
t0=$(date +%s)
timeout 220 python3 benchmarks/scale_run.py --patients "$patients" --workers 16 --out /dev/shm/exp \
    --raw-dir /dev/shm/raw --fs 250 --synth-fs 250 --difficulty realistic --keep 2>&1 | tail -7 >> "$out/cohort.txt"
python3 - >> "$out/cohort.txt" 2>&1 <<'PY'
import json, pandas as pd
from ecgkit.synth.phenotypes import LABELS, record_prevalence
truth = pd.read_parquet("/dev/shm/raw/truth.parquet")
man = pd.read_parquet("/dev/shm/exp/cohort/manifest.parquet")
tgt = record_prevalence()
m = man.set_index(man["record_id"].astype(str))
lab = m.reindex(truth["record_id"].astype(str))
out = {"records": len(truth), "label_cardinality": float(truth[list(LABELS)].sum(axis=1).mean())}
for k in LABELS:
    agree = float((lab[k].fillna(-9).astype(int).to_numpy() == truth[k].to_numpy()).mean()) if k in lab else None
    out[k] = {"prevalence": float(truth[k].mean()), "target": tgt[k], "positives": int(truth[k].sum()),
              "labeler_agreement": agree}
print("COHORT", json.dumps(out))
PY
echo "cohort seconds $(( $(date +%s) - t0 ))" >> "$out/cohort.txt"
rm -rf /dev/shm/raw
S=/dev/shm/exp/shards; E=/tmp/expdir; spec=pipelines/experiment_realistic.yaml
t0=$(date +%s)
for arm in multi_task task_aware cotask; do for seed in 0 1 2; do
  timeout 330 python3 pipelines/run_experiment.py $spec $S --out $E --device cuda --epochs "$epochs" \
      --arms $arm --seeds $seed > /tmp/logs/${arm}_$seed.txt 2>&1 &
done; done
wait
echo "training seconds $(( $(date +%s) - t0 ))" >> "$out/cohort.txt"
for f in /tmp/logs/*.txt; do echo "== $f"; grep -E "epoch .* done|early stop|Error|error" "$f" | tail -12; done \
    > "$out/train_logs.txt" 2>&1
for f in $E/*/seed-*/metrics.csv; do echo "== $f"; cat "$f"; done > "$out/metrics_csv.txt" 2>&1
t0=$(date +%s)
timeout 120 python3 pipelines/run_experiment.py $spec $S --out $E --device cuda --epochs "$epochs" \
    > /tmp/logs/compare.txt 2>&1
tail -3 /tmp/logs/compare.txt >> "$out/train_logs.txt"
cp $E/comparison.json $E/comparison.md "$out/" 2>/dev/null
echo "compare seconds $(( $(date +%s) - t0 ))" >> "$out/cohort.txt"
timeout 100 python3 benchmarks/diagnose_task_aware.py $E $S --out "$out/diag.json" > /tmp/logs/diag.txt 2>&1
tail -2 /tmp/logs/diag.txt >> "$out/train_logs.txt"
