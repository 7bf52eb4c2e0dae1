#!/usr/bin/env bash
# The single-GPU session behind BENCHMARKS.md's GPU and quiet-CPU numbers (run by the `device` tool on
# an H100 box: torch/h5py/numba preinstalled; wfdb, pydicom, pyahocorasick carried as wheels in .whl/,
# the real fixtures carried in .devdata/). Usage: benchmarks/device_gpu.sh gpu|cpu OUTDIR
set -uo pipefail
cd "$(dirname "$0")/.."
out=${2:-/tmp/out}
mkdir -p "$out"
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl 2>&1 | tail -2
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1
mkdir -p ../shared && ln -sfn "$PWD/.devdata" ../shared/data
case "$1" in
gpu)
  nvidia-smi -L; python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name())'
  df -h /tmp /dev/shm | tee "$out/disk.txt"
  timeout 120 python3 benchmarks/bench_train_gpu.py --build-only --shards /tmp/bench-shards 2>&1 | tail -5 \
      | tee "$out/gpu_build.txt"
  timeout 280 python3 benchmarks/bench_train_gpu.py --shards /tmp/bench-shards --eval 2>&1 | tail -40 \
      | tee "$out/gpu_bench.txt"
  timeout 150 python3 benchmarks/bench_train_gpu.py --shards /tmp/bench-shards --no-compile --skip-loader \
      --steps 200 --warmup 30 2>&1 | tail -20 | tee "$out/gpu_bench_nocompile.txt"
  ;;
scale)
  # 300,000 synthetic records end to end; the raw archive (36 GB) on tmpfs, the shards on disk
  rm -rf /tmp/bench-shards; nproc; free -g | head -2; df -h /tmp /dev/shm
  timeout "${3:-420}" python3 benchmarks/scale_run.py --patients 150000 --workers 16 --out /tmp/scale \
      --raw-dir /dev/shm/scale-raw 2>&1 | tail -30 | tee "$out/scale_run.txt"
  ;;
cpu)
  lscpu | grep -E "Model name|^CPU\(s\)"
  taskset -c 2,3 python3 benchmarks/bench_ingest.py --repeats 5 2>&1 | tee "$out/ingest.txt"
  taskset -c 4 python3 benchmarks/bench_sampler.py 2>&1 | tail -20 | tee "$out/sampler.txt"
  taskset -c 5 python3 benchmarks/bench_labels.py --n 1000000 --baseline-n 5000 2>&1 | tail -20 | tee "$out/labels.txt"
  taskset -c 6,7 python3 benchmarks/bench_shards.py --workers 2 2>&1 | tail -30 | tee "$out/shards.txt"
  ;;
esac
