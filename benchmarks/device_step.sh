#!/usr/bin/env bash
# One H200 call for issue 18's step work (BENCHMARKS.md "GPU convolution path"): training-step
# variants (one process each, capped), then end to end from shards with and without the CUDA graph
# (two seeds, validation AUROC). Usage: benchmarks/device_step.sh OUTDIR [VARIANT_BUDGET_S] [E2E_BUDGET_S]
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/out}; vb=${2:-140}; eb=${3:-150}
mkdir -p "$out"
t0=$(date +%s)
nvidia-smi -L; python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
# shards for the end-to-end runs, built on the CPU while the GPU measures the variants
nice -n 10 timeout 150 python3 benchmarks/bench_train_gpu.py --build-only --shards /tmp/sh --records 20000 \
    >"$out/build.txt" 2>&1 &
python3 benchmarks/bench_step_variants.py --budget "$vb" --cap 60 --profile --out "$out/variants.jsonl" --plan \
    8:32:5000:256=old,graph 8:32:5000:256=graph_eager 8:32:5000:1024=graph 16:32:5000:256=old,graph \
    16:64:2500:256:hughes=old,graph 8:32:5000:1024=infer 8:32:5000:256=nosync 8:32:5000:512=graph \
    8:32:5000:256=fused,graph_autotune 2>&1 | cut -c1-3000
wait
cat "$out/build.txt" | tail -2
for run in "on 0" "off 0" "on 1" "off 1"; do
  set -- $run
  left=$(( eb - ($(date +%s) - t0 - vb) ))
  [ "$left" -lt 25 ] && { echo "{\"skipped\": \"cuda_graph $1 seed $2\"}" >>"$out/e2e.jsonl"; continue; }
  [ "$left" -gt 60 ] && left=60
  timeout "$left" python3 benchmarks/bench_train_gpu.py --shards /tmp/sh --cuda-graph "$1" --seed "$2" --eval \
      --steps 300 --warmup 60 2>"$out/e2e_err_$1_$2.txt" | tail -1 | tee -a "$out/e2e.jsonl"
done
echo "total $(( $(date +%s) - t0 )) s"
