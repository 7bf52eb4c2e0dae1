"""Training-step variants on one GPU, one process per variant, each with a time cap: JSON lines.

Each variant times ecgkit's training step on a batch already on the device (bf16 autocast, AdamW,
grad clipping 1.0, the task-aware loss) for one model setting and prints one JSON line:

- ``old``: the step as the previous session left it (channels-last, torch.compile; the task's
  one-hot and the loss weights were built on the host and copied, which waits for the GPU twice a step);
- ``nosync``: ``ecgkit.trainer.train_step`` now (both built on the device);
- ``fused``: ``nosync`` with AdamW ``fused=True``;
- ``graph``: ``ecgkit.trainer.graphed.GraphedStep`` (the whole step as one CUDA graph), compiled model;
- ``graph_eager``: the same without torch.compile; it also checks, with dropout 0 and the same
  start, that 6 graphed steps give the same losses and weights as 6 ``train_step`` calls;
- ``graph_conv1d``: ``graph`` on the Conv1d path; ``graph_autotune``: ``graph`` with compile mode
  ``max-autotune-no-cudagraphs``;
- ``infer``: inference (eval, bf16, compiled) samples/s of both convolution paths at the setting's batch.

``old`` also reports a profile: per step, the GPU's kernel time by kind against the step's wall time.

Usage (GPU): ``python benchmarks/bench_step_variants.py --plan 8:32:5000:256=old,graph ... --budget 300``
CPU smoke test: ``python benchmarks/bench_step_variants.py --device cpu --plan 2:32:400:4=nosync,graph_eager``
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

N_TASKS = 18


def _model(setting: str, dropout: float | None = None):
    from ecgkit.models import make_model
    parts = setting.split(":")
    blocks, filters, length, _ = (int(v) for v in parts[:4])
    kw = {}
    if len(parts) > 4 and parts[4] == "hughes":  # Hughes et al.: linear growth, flattened head
        kw = {"filter_growth": "linear", "head": "flatten", "n_samples": length}
    if dropout is not None:
        kw["dropout"] = dropout
    return make_model(N_TASKS, n_blocks=blocks, base_filters=filters, **kw)


def _old_step(model, weighting, opt, sched, x, y, task: int, *, amp: bool, grad_clip: float):
    """The step before this session's change (host-built one-hot and weights)."""
    import torch.nn.functional as F
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
        logits = model(x)
    present = F.one_hot(torch.tensor(task, device=x.device), y.shape[1]).bool()
    head_loss = F.binary_cross_entropy_with_logits(logits[:, task].float(), y[:, task].float())
    task_losses = head_loss * present
    loss = (weighting.weights().to(x.device) * task_losses * present).sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], grad_clip)
    opt.step()
    sched.step()
    return task_losses.detach(), present


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _parts(setting: str, variant: str, device: torch.device, seed: int = 0, dropout: float | None = None):
    from ecgkit.losses import make_weighting
    from ecgkit.trainer import TrainConfig
    from ecgkit.trainer.step import _optimizer
    torch.manual_seed(seed)
    path = "conv1d" if variant == "graph_conv1d" or device.type == "cpu" else "channels_last"
    model = _model(setting, dropout).set_conv_path(path).to(device)
    weighting = make_weighting("equal", N_TASKS).to(device)
    opt, sched = _optimizer(TrainConfig(), model, weighting, 100_000)
    if variant == "fused":
        opt.param_groups[0]["fused"] = opt.param_groups[1]["fused"] = True
        opt.defaults["fused"] = True
        for g in opt.param_groups:
            g["foreach"] = False
    return model, weighting, opt, sched


def _run_variant(args: argparse.Namespace) -> dict:
    from ecgkit.trainer import train_step
    from ecgkit.trainer.graphed import GraphedStep
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    setting, variant = args.setting, args.variant
    batch = int(setting.split(":")[3])
    length = int(setting.split(":")[2])
    row: dict = {"setting": setting, "variant": variant, "torch": torch.__version__,
                 "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu"}
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 12, length, generator=gen).to(device)
    y = torch.randint(0, 2, (batch, N_TASKS), generator=gen).to(device=device, dtype=torch.int8)
    amp = device.type == "cuda"
    t_start = time.perf_counter()
    if variant == "infer":
        for path in ("conv1d", "channels_last"):
            m = _model(setting).set_conv_path(path).to(device).eval()
            run = torch.compile(m) if device.type == "cuda" else m
            with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                for _ in range(args.warmup):
                    run(x)
                _sync(device)
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    run(x)
                _sync(device)
            row[f"{path}_infer_samples_per_s"] = round(args.steps * batch / (time.perf_counter() - t0))
        row["speedup"] = round(row["channels_last_infer_samples_per_s"] / row["conv1d_infer_samples_per_s"], 3)
        return row
    if variant == "graph_eager" and device.type == "cuda":
        row["check"] = _check_graph(setting, device, x, y)
    model, weighting, opt, sched = _parts(setting, variant, device)
    compile_ = device.type == "cuda" and variant != "graph_eager"
    mode = "max-autotune-no-cudagraphs" if variant == "graph_autotune" else None
    run = torch.compile(model, mode=mode) if compile_ else model
    if variant.startswith("graph") and device.type == "cuda":
        gstep = GraphedStep(run, weighting, opt, sched, amp=amp, grad_clip=1.0)

        def step(i: int) -> None:
            gstep(x, y, i % N_TASKS)
    elif variant == "old":
        def step(i: int) -> None:
            _old_step(run, weighting, opt, sched, x, y, i % N_TASKS, amp=amp, grad_clip=1.0)
    else:
        def step(i: int) -> None:
            train_step(run, weighting, opt, sched, x, y, i % N_TASKS, amp=amp, grad_clip=1.0)
    for i in range(args.warmup):
        step(i)
    _sync(device)
    row["warmup_s"] = round(time.perf_counter() - t_start, 1)
    rates = []
    for r in range(3):
        t0 = time.perf_counter()
        for i in range(args.steps):
            step(i)
        _sync(device)
        rates.append(round(args.steps * batch / (time.perf_counter() - t0)))
    row["samples_per_s_runs"] = rates
    row["samples_per_s"] = sorted(rates)[1]
    row["ms_per_step"] = round(batch / row["samples_per_s"] * 1000, 3)
    if variant == "old" and args.profile:
        row["profile"] = _profile(step, device, row["ms_per_step"])
    return row


def _check_graph(setting: str, device: torch.device, x, y) -> dict:
    """6 steps, dropout 0, same start: GraphedStep (3 eager warm-up + capture + replays) vs train_step."""
    from ecgkit.trainer import train_step
    from ecgkit.trainer.graphed import GraphedStep
    out = {}
    runs = {}
    for kind in ("train_step", "graph"):
        model, weighting, opt, sched = _parts(setting, kind, device, seed=1, dropout=0.0)
        torch.backends.cudnn.deterministic = True
        g = GraphedStep(model, weighting, opt, sched, amp=True, grad_clip=1.0) if kind == "graph" else None
        losses = []
        for i in range(6):
            if g is not None:
                tl, _ = g(x, y, i % N_TASKS)
            else:
                tl, _ = train_step(model, weighting, opt, sched, x, y, i % N_TASKS, amp=True, grad_clip=1.0)
            losses.append(float(tl.sum()))
        runs[kind] = (losses, [p.detach().float().clone() for p in model.parameters()])
        torch.backends.cudnn.deterministic = False
    (la, pa), (lb, pb) = runs["train_step"], runs["graph"]
    out["losses_train_step"] = [round(v, 6) for v in la]
    out["losses_graph"] = [round(v, 6) for v in lb]
    out["max_abs_param_diff"] = max(float((a - b).abs().max()) for a, b in zip(pa, pb))
    out["max_param"] = max(float(a.abs().max()) for a in pa)
    return out


def _profile(step, device: torch.device, ms_step: float, n: int = 10) -> dict:
    from torch.profiler import ProfilerActivity, profile
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for i in range(n):
            step(i)
        _sync(device)
    kinds: dict[str, float] = {}
    top = []
    for e in prof.key_averages():
        if not str(getattr(e, "device_type", "")).endswith("CUDA"):
            continue
        name = e.key
        if name.startswith(("aten::", "Optimizer", "ProfilerStep", "cuda")) or "#" in name:
            continue
        t = float(getattr(e, "self_device_time_total", 0.0)) / n / 1000  # ms per step
        low = name.lower()
        kind = ("conv wgrad" if "wgrad" in low else "conv dgrad" if "dgrad" in low else
                "conv fprop" if ("fprop" in low or "conv" in low and "xmma" in low) else
                "layout transpose" if "nchwtonhwc" in low or "nhwctonchw" in low else
                "triton (fused BN/ReLU/pad/pool)" if low.startswith("triton") else
                "optimizer/clip (multi-tensor)" if "multi_tensor" in low or "adam" in low or "foreach" in low else
                "other")
        kinds[kind] = kinds.get(kind, 0.0) + t
        top.append((t, name[:80], e.count // n))
    top.sort(reverse=True)
    busy = sum(kinds.values())
    return {"gpu_kernel_ms_per_step": round(busy, 3), "wall_ms_per_step": ms_step,
            "gpu_busy_fraction": round(busy / ms_step, 3) if ms_step else None,
            "ms_by_kind": {k: round(v, 3) for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
            "top": [{"kernel": k, "ms": round(t, 3), "calls_per_step": c} for t, k, c in top[:10]]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--plan", nargs="+", default=["8:32:5000:256=old,nosync,graph"],
                   help="SETTING=VARIANT,VARIANT... with SETTING blocks:filters:length:batch[:hughes]")
    p.add_argument("--device", default="cuda")
    p.add_argument("--steps", type=int, default=40, help="timed steps per run (3 runs, median)")
    p.add_argument("--warmup", type=int, default=12)
    p.add_argument("--cap", type=float, default=90.0, help="seconds per variant process")
    p.add_argument("--budget", type=float, default=1e9, help="seconds for the whole plan")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--out", type=Path, help="also append the JSON lines here")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--setting", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:  # worker
        print(json.dumps(_run_variant(args)), flush=True)
        return
    t0 = time.perf_counter()
    for item in args.plan:
        setting, _, variants = item.partition("=")
        for v in variants.split(","):
            left = args.budget - (time.perf_counter() - t0)
            if left < 15:
                row = {"setting": setting, "variant": v, "skipped": "plan budget spent"}
            else:
                cmd = [sys.executable, __file__, "--variant", v, "--setting", setting, "--device", args.device,
                       "--steps", str(args.steps), "--warmup", str(args.warmup)] + (["--profile"] if args.profile else [])
                t1 = time.perf_counter()
                try:
                    res = subprocess.run(cmd, capture_output=True, text=True, timeout=min(args.cap, left),
                                         env=os.environ.copy())
                    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
                    row = json.loads(lines[-1]) if lines else {
                        "setting": setting, "variant": v, "error": (res.stderr or res.stdout)[-1500:]}
                except subprocess.TimeoutExpired:
                    row = {"setting": setting, "variant": v, "error": f"over its {min(args.cap, left):.0f} s cap"}
                row["process_s"] = round(time.perf_counter() - t1, 1)
            line = json.dumps(row)
            print(line, flush=True)
            if args.out:
                with args.out.open("a") as f:
                    f.write(line + "\n")


if __name__ == "__main__":
    main()
