#!/usr/bin/env bash
# Second issue-16 GPU session: the realistic cohort after adding silent/mimic findings (calibration),
# joint vs task-aware with 3 seeds on all 18 tasks, and the same two arms on a 3-task subset
# (LVH, 1AVB, APC: each task-aware head gets 1/3 instead of 1/18 of the batches) to test the head-update
# explanation. Usage: benchmarks/device_calibrate.sh OUTDIR [PATIENTS] [EPOCHS]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/out}; patients=${2:-30000}; epochs=${3:-8}
mkdir -p "$out" /tmp/logs
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2
rm -rf /dev/shm/exp /dev/shm/raw /tmp/expdir /tmp/expsub
timeout 150 python3 benchmarks/scale_run.py --patients "$patients" --workers 16 --out /dev/shm/exp \
    --raw-dir /dev/shm/raw --fs 250 --synth-fs 250 --difficulty realistic --keep 2>&1 | tail -1 > "$out/cohort.txt"
rm -rf /dev/shm/raw
S=/dev/shm/exp/shards; spec=pipelines/experiment_realistic.yaml
t0=$(date +%s)
for arm in multi_task task_aware; do
  for seed in 0 1 2; do
    timeout 300 python3 pipelines/run_experiment.py $spec $S --out /tmp/expdir --device cuda --epochs "$epochs" \
        --arms $arm --seeds $seed > /tmp/logs/${arm}_$seed.txt 2>&1 &
  done
  for seed in 0 1; do
    timeout 300 python3 pipelines/run_experiment.py $spec $S --out /tmp/expsub --device cuda --epochs "$epochs" \
        --arms $arm --seeds $seed --tasks LVH,1AVB,APC > /tmp/logs/sub_${arm}_$seed.txt 2>&1 &
  done
done
wait
echo "training seconds $(( $(date +%s) - t0 ))" >> "$out/cohort.txt"
for f in /tmp/logs/*.txt; do echo "== $f"; grep -E "epoch .* done|early stop|Error|error" "$f" | tail -10; done \
    > "$out/train_logs.txt" 2>&1
timeout 100 python3 pipelines/run_experiment.py $spec $S --out /tmp/expdir --device cuda --epochs "$epochs" \
    --arms multi_task,task_aware > /tmp/logs/compare.txt 2>&1
cp /tmp/expdir/comparison.json "$out/comparison.json"; cp /tmp/expdir/comparison.md "$out/comparison.md"
timeout 60 python3 pipelines/run_experiment.py $spec $S --out /tmp/expsub --device cuda --epochs "$epochs" \
    --arms multi_task,task_aware --seeds 0,1 --tasks LVH,1AVB,APC > /tmp/logs/compare_sub.txt 2>&1
cp /tmp/expsub/comparison.json "$out/comparison_subset.json"; cp /tmp/expsub/comparison.md "$out/comparison_subset.md"
tail -2 /tmp/logs/compare.txt /tmp/logs/compare_sub.txt >> "$out/train_logs.txt"
