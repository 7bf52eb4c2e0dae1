"""The model's compute ceiling per convolution path, and where its GPU time goes.

For each model setting (blocks, base filters, input length, batch), in one process and on the same
GPU, this times ``ecgkit.trainer.train_step`` on a batch already on the device (bf16 autocast,
torch.compile, AdamW, the task-aware single-head loss) with the Conv1d path and with the
channels-last conv2d path, and prints one JSON line per setting with both samples/s and their ratio.
Both paths compute the same function with the same weights (``tests/models/test_resnet1d.py``
checks outputs and gradients); this script also checks, per setting, that both paths give the same
bf16 logits from the same weights within bf16 rounding.

``--profile`` adds, per path of the first setting, the top CUDA kernels by total time under the
torch profiler (name, share of GPU time, calls), which is where a fused kernel would have to win.

Usage (GPU): ``python benchmarks/bench_conv_path.py --settings 8:32:5000:256 16:32:5000:256 16:64:2500:256``
CPU smoke test: ``python benchmarks/bench_conv_path.py --device cpu --steps 2 --warmup 1 --settings 2:32:500:8``
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

N_TASKS = 18
# a GFLOP estimate is not needed for the ratio; samples/s is what training sees


def _step_fn(blocks: int, filters: int, length: int, batch: int, path: str, device: torch.device,
             compile_: bool, seed: int = 0):
    from ecgkit.losses import make_weighting
    from ecgkit.models import make_model
    from ecgkit.trainer import TrainConfig, train_step
    from ecgkit.trainer.step import _optimizer

    torch.manual_seed(seed)
    model = make_model(N_TASKS, n_blocks=blocks, base_filters=filters).set_conv_path(path).to(device)
    weighting = make_weighting("equal", N_TASKS).to(device)
    opt, sched = _optimizer(TrainConfig(), model, weighting, 10_000)
    run = torch.compile(model) if compile_ else model
    gen = torch.Generator(device="cpu").manual_seed(seed)
    x = torch.randn(batch, 12, length, generator=gen).to(device)
    y = torch.randint(0, 2, (batch, N_TASKS), generator=gen).to(device=device, dtype=torch.int8)
    amp = device.type == "cuda"
    counter = [0]

    def step() -> None:
        train_step(run, weighting, opt, sched, x, y, counter[0] % N_TASKS, amp=amp, grad_clip=1.0)
        counter[0] += 1

    return model, step, x


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _rate(step, batch: int, warmup: int, steps: int, device: torch.device) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps * batch / (time.perf_counter() - t0)


def _profile(step, device: torch.device, n: int = 10, top: int = 12) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(n):
            step()
        _sync(device)
    events = [e for e in prof.key_averages() if getattr(e, "device_type", None) is not None]
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [e for e in events if getattr(e, key, 0) > 0]
    total = sum(getattr(e, key) for e in events) or 1.0
    events.sort(key=lambda e: getattr(e, key), reverse=True)
    return [{"kernel": e.key[:90], "share": round(getattr(e, key) / total, 3), "calls": e.count,
             "ms_per_step": round(getattr(e, key) / n / 1000, 3)} for e in events[:top]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--settings", nargs="+", default=["8:32:5000:256"],
                   help="blocks:base_filters:length:batch, one per setting")
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    for i, setting in enumerate(args.settings):
        blocks, filters, length, batch = (int(v) for v in setting.split(":"))
        row: dict = {"blocks": blocks, "base_filters": filters, "length": length, "batch": batch,
                     "compile": args.compile, "torch": torch.__version__,
                     "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
        models = {}
        for path in ("conv1d", "channels_last"):
            model, step, x = _step_fn(blocks, filters, length, batch, path, device, args.compile)
            t0 = time.perf_counter()
            row[f"{path}_samples_per_s"] = round(_rate(step, batch, args.warmup, args.steps, device))
            row[f"{path}_wall_s"] = round(time.perf_counter() - t0, 1)
            if args.profile and i == 0:
                row[f"{path}_profile"] = _profile(step, device)
            models[path] = model
        # same weights in both paths -> same logits (bf16 autocast on CUDA rounds both alike)
        ref, fast = models["conv1d"].eval(), models["channels_last"].eval()
        fast.load_state_dict(ref.state_dict())
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            a, b = ref(x[:32]).float(), fast(x[:32]).float()
        row["max_abs_logit_diff"] = float((a - b).abs().max())
        row["speedup"] = round(row["channels_last_samples_per_s"] / row["conv1d_samples_per_s"], 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
