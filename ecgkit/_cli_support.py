"""What the ``ecgkit`` command needs besides its commands: exit codes, error lines, option types.

Every error reaches the user as one line, ``Error: <what> <where>``, and a distinct exit status:

=====  ===================================================================================
code   meaning
=====  ===================================================================================
0      success
1      an internal error (a bug in ecgkit: please report it; ``-vv`` shows the traceback)
2      usage: an unknown option, a bad option value, a bad config file or key
3      the quarantine rate of ``scan`` or ``shard`` passed ``--max-quarantine-rate``
4      bad or missing data: no manifest, no shards, no checkpoint, a folder of the wrong kind,
       an empty scan or split, an existing run without ``--resume``/``--overwrite``; a full disk
       or an I/O error (the file named, temporary files removed)
5      the output folder is in use by another ecgkit job (its lock file names the pid)
130    interrupted (Ctrl-C)
=====  ===================================================================================

A traceback is printed only with ``-vv`` (``ecgkit -vv COMMAND ...``).
"""
from __future__ import annotations

import sys
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

import click

from ecgkit.config import make_config
from ecgkit.errors import ConfigError, EcgkitError

C = TypeVar("C")

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_QUARANTINE = 3
EXIT_DATA = 4
EXIT_LOCKED = 5
EXIT_INTERRUPTED = 130


class QuarantineLimitError(EcgkitError):
    """The quarantine rate of a batch stage passed its configured limit (exit status 3)."""


def check_quarantine_rate(stage: str, rate: float, limit: float, folder: Path) -> None:
    """Raise :class:`QuarantineLimitError` when a stage quarantined more than ``--max-quarantine-rate``."""
    if rate > limit:
        raise QuarantineLimitError(f"{stage}: quarantine rate {rate:.1%} exceeds the limit {limit:.1%} "
                                   f"(--max-quarantine-rate); see {(folder / 'quarantine.parquet').resolve()}")


def exit_code_of(exc: BaseException) -> int:
    """The exit status for an exception that reached the command line."""
    from ecgkit._lock import LockedError

    if isinstance(exc, QuarantineLimitError):
        return EXIT_QUARANTINE
    if isinstance(exc, LockedError):
        return EXIT_LOCKED
    if isinstance(exc, (click.UsageError, ConfigError)):
        return EXIT_USAGE
    if isinstance(exc, (EcgkitError, OSError)):
        return EXIT_DATA
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_INTERNAL


def error_line(exc: BaseException) -> str:
    """The one line a user sees for an exception (without the ``Error: `` prefix)."""
    if isinstance(exc, click.UsageError):
        msg = exc.format_message()
        if exc.ctx is not None:
            msg += f" (see '{exc.ctx.command_path} --help')"
        return msg
    if isinstance(exc, click.ClickException):
        return exc.format_message()
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, (EcgkitError, OSError)):
        return " ".join(str(exc).split()) or type(exc).__name__
    return (f"internal error {type(exc).__name__}: {' '.join(str(exc).split())} (a bug in ecgkit; "
            f"rerun with -vv for the traceback and please report it)")


def verbosity(args: Sequence[str]) -> int:
    """The ``-v`` count given before the command name (``ecgkit -vv train ...``)."""
    n = 0
    for a in args:
        if a == "--verbose":
            n += 1
        elif len(a) > 1 and a[0] == "-" and set(a[1:]) == {"v"}:
            n += len(a) - 1
        elif not a.startswith("-"):
            break
    return n


class EcgkitGroup(click.Group):
    """A click group whose errors are one ``Error:`` line and an exit status from :func:`exit_code_of`."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:  # --help, --version
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Error: aborted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except (Exception, KeyboardInterrupt) as exc:
            if verbosity(argv) > 1:
                traceback.print_exc(file=sys.stderr)
            click.echo(f"Error: {error_line(exc)}", err=True)
            sys.exit(exit_code_of(exc))
        sys.exit(rv if isinstance(rv, int) else EXIT_OK)


@contextmanager
def about(path: str | Path) -> Iterator[None]:
    """Name ``path`` in an ecgkit error raised inside the block when the message does not already."""
    try:
        yield
    except EcgkitError as exc:
        where = str(Path(path).resolve())
        if where not in str(exc) and str(path) not in str(exc):
            exc.args = (f"{where}: {exc}",)
        raise


class DeviceType(click.ParamType):
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; anything else is a usage error listing them."""

    name = "[auto|cpu|cuda|cuda:N]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        v = str(value).strip().lower()
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        self.fail(f"{value!r} is not one of 'auto', 'cpu', 'cuda', 'cuda:N'", param, ctx)


def check_device(device: str | None) -> None:
    """Refuse ``cuda`` before any work when torch sees no CUDA device."""
    if device is None or not device.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise click.BadParameter(f"{device!r} asked for, but torch {torch.__version__} sees no CUDA device "
                                 f"(a CPU build of torch, or no GPU/driver); use --device cpu or auto, or "
                                 f"install a CUDA build of torch (README, 'Set up')", param_hint="'--device'")


class ThresholdType(click.ParamType):
    """``max_f1`` or a target specificity in (0, 1)."""

    name = "max_f1|SPECIFICITY"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str | float:
        if isinstance(value, float) or str(value) == "max_f1":
            return value
        try:
            spec = float(value)
        except ValueError:
            self.fail(f"expected 'max_f1' or a specificity between 0 and 1 such as 0.95, got {value!r}", param, ctx)
        if not 0.0 < spec < 1.0:
            self.fail(f"a target specificity must lie strictly between 0 and 1, got {value!r}", param, ctx)
        return spec


def config_section(config_file: Path | None, command: str, commands: Sequence[str]) -> dict[str, Any] | None:
    """The settings of ``command`` in a YAML config: its section, or the top level.

    A file whose top level has a mapping named after any ecgkit command is a pipeline file with one
    section per command: ``command`` then gets its own section (or nothing when it has none). Any
    other file is read as one command's settings.
    """
    if config_file is None:
        return None
    import yaml

    try:
        loaded = yaml.safe_load(Path(config_file).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {config_file}: {' '.join(str(exc).split())}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {config_file} must hold a mapping of keys to values")
    if any(isinstance(loaded.get(c), dict) for c in commands):
        section = loaded.get(command) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"config file {config_file}: section {command!r} must be a mapping")
        return dict(section)
    return dict(loaded)


def load_command_config(cls: type[C], config_file: Path | None, command: str, commands: Sequence[str],
                        overrides: dict[str, Any]) -> C:
    """A stage config from ``command``'s settings in ``config_file`` plus the options given (not None).

    A wrong key or value names the file.
    """
    from_file = config_section(config_file, command, commands) or {}
    values = {**from_file, **{k: v for k, v in overrides.items() if v is not None}}
    try:
        return make_config(cls, values)
    except ConfigError as exc:
        if any(repr(k) in str(exc) for k in from_file):  # a key or value of the file: name the file
            raise ConfigError(f"config file {config_file} ({command!r} settings): {exc}") from exc
        raise


_PAPER_OPTIONS = (  # TrainConfig keys of the papers' settings (issue 20), as `ecgkit train` options
    click.option("--base-filters", type=int, help="Filters of the first block (Hannun 32, Hughes 64)."),
    click.option("--filter-growth", type=click.Choice(["double", "linear"]),
                 help="Width every 4 blocks: double (Hannun) or linear (Hughes' 64k reading)."),
    click.option("--increase-every", type=click.IntRange(min=1),
                 help="Blocks per width step (Hannun 4; the CO-TASK authors' code 2)."),
    click.option("--weight-fn", type=click.Choice(["log", "inverse", "inverse_log", "sqrt", "none"]),
                 help="Task-aware class weight per record: log(n)/n, 1/n, 1/log(n), 1/sqrt(n) or 1."),
    click.option("--batches-per-epoch-scale", type=click.FloatRange(0, min_open=True),
                 help="Task-aware samplers: batches per epoch x this (the CO-TASK authors' num_batch_scaler)."),
    click.option("--lr-schedule", type=click.Choice(["cosine", "multistep"]),
                 help="cosine (warm-up + cosine) or multistep (x --lr-gamma at each --lr-milestones epoch)."),
    click.option("--lr-milestones", help="Comma-separated epochs for --lr-schedule multistep (e.g. 7,14,21)."),
    click.option("--lr-gamma", type=click.FloatRange(0, 1, min_open=True), help="multistep factor [0.1]."),
    click.option("--kernel-size", type=click.IntRange(1, 255),
                 help="Convolution kernel of every layer (Hannun 16; the CO-TASK authors' code 25)."),
    click.option("--head", type=click.Choice(["mean", "flatten"]),
                 help="mean: pool the final map over time; flatten: Hughes' flattened map."),
    click.option("--major-tasks", help="Comma-separated major tasks (sampler weights, aux pairs, early stopping)."),
    click.option("--major-weight", type=float, help="Task-sampling weight of a major task vs a minor one [4]."),
    click.option("--aux-major-pairs", type=int,
                 help="How many of the --aux-tasks pairs include a major task (the rest: minor tasks only)."),
    click.option("--oversample", type=click.Choice(["none", "ucsf", "duplicate"]),
                 help="Joint sampler's training set: Hughes' UCSF subset or duplicated positives."),
    click.option("--oversample-k", type=int, help="Positives per class for --oversample (default 4000)."),
    click.option("--early-stopping", type=click.Choice(["macro_auroc", "val_loss"]), help="Validation score."),
    click.option("--early-stopping-min-positives", type=int,
                 help="Score only tasks with at least this many validation positives."),
    click.option("--method", type=click.Choice(["standard", "damtl"]), help="damtl: DAMTL's Algorithm 1."),
    click.option("--damtl-tasks", help="DAMTL tasks: label sets joined by '+', comma-separated (LVH+AFIB,LVH+VT)."),
    click.option("--lambda-l1", type=float, help="DAMTL: weight of the masks' L1 norm."),
    click.option("--lambda-cmmd", type=float, help="DAMTL: weight of the conditional MMD."),
    click.option("--sharing", type=click.Choice(["hard", "cross-stitch", "cross_stitch"]),
                 callback=lambda ctx, param, v: v.replace("-", "_") if v else v,
                 help="hard: one shared trunk; cross_stitch: one column per task mixed by cross-stitch units."),
    click.option("--stitch-columns", "cross_stitch_columns", type=click.Choice(["task", "cohort"]),
                 help="--sharing cross-stitch: one column per task, or per cohort of multi-cohort shards."),
)


def _paper_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_PAPER_OPTIONS):
        f = option(f)
    return f
