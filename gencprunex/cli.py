"""The ``gencprunex`` command line.

Every failure caused by input ends in one line on stderr and exit status 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class CliError(Exception):
    """A problem with the command line's input, reported as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gencprunex", description="Structured channel pruning of Keras models for microcontrollers."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    commands = parser.add_subparsers(dest="command", required=True)

    prune = commands.add_parser("prune", help="prune a saved Keras model (.keras or .h5)")
    modes = prune.add_subparsers(dest="mode", required=True)
    fixed = modes.add_parser("fixed", help="one ratio for every prunable channel group")
    fixed.add_argument("model", type=Path)
    fixed.add_argument("--ratio", type=float, required=True, help="fraction of channels removed, 0 <= R < 1")
    dynamic = modes.add_parser("dynamic", help="one ratio per prunable channel group")
    dynamic.add_argument("model", type=Path)
    dynamic.add_argument(
        "--ratios",
        required=True,
        help="R1,R2,... one per prunable group in order, or NAME=R,NAME=R,... by group or layer name",
    )
    genetic = modes.add_parser("genetic", help="search per-group ratios that fit a RAM/Flash/MACs budget")
    genetic.add_argument("model", type=Path)
    genetic.add_argument("--data", type=Path, required=True, help="training data (.npz: features/images, labels)")
    genetic.add_argument("--val", type=Path, help="validation data (.npz); default: --validation-split of --data")
    genetic.add_argument("--preset", help="a board's budgets (see HardwareProfile.presets())")
    genetic.add_argument("--ram", type=_amount, help="RAM budget in bytes (or 75KiB, 0.5MiB)")
    genetic.add_argument("--flash", type=_amount, help="Flash budget in bytes (or 100KiB)")
    genetic.add_argument("--macs", type=_amount, help="MACs budget per inference (or 1.5M)")
    genetic.add_argument("--population", type=int, default=16, help="candidates per generation (multiple of 4)")
    genetic.add_argument("--generations", type=int, default=10)
    genetic.add_argument("--finetune-epochs", type=int, default=3, help="fine-tuning of the finalists (0: none)")
    genetic.add_argument("--finalists", type=int, default=3)
    genetic.add_argument("--validation-split", type=float, default=0.2)
    genetic.add_argument("--algorithm", default="nsga2", choices=["nsga2", "gaco"])
    genetic.add_argument("--checkpoint", type=Path, help="save the search after every generation; resume from it")
    genetic.add_argument("--n-jobs", type=int, default=1, help="processes scoring candidates in parallel")
    genetic.add_argument("--seed", type=int, default=0)
    genetic.add_argument("--json", action="store_true", help="print the result as JSON instead of a table")
    for sub in (fixed, dynamic, genetic):
        sub.add_argument("-o", "--output", type=Path, required=True, help="where to write the pruned model")
        sub.add_argument("--importance", default="l1", choices=["l1", "l2", "bn_scale", "random"])
        sub.add_argument("--round-to", type=int, default=1, help="keep a multiple of this many channels")
        sub.add_argument("--min-channels", type=int, default=1, help="never keep fewer channels per group")
        sub.add_argument("--ignore", default="", help="comma-separated layer names whose outputs stay whole")
        sub.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")

    demo = commands.add_parser("demo", help="prune the seed's MobileNet and show channels per group")
    demo.add_argument("--ratio", type=float, default=0.5, help="Fixed-mode ratio (default 0.5)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gencprunex`` console script."""
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    try:
        if args.command == "prune":
            return _prune(args)
        return _demo(args)
    except Exception as error:
        if args.debug:
            raise
        from .errors import GencPruneXError

        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if not isinstance(error, GencPruneXError | CliError):
            message = f"{type(error).__name__}: {message} (run with --debug for the traceback)"
        print(f"gencprunex: error: {message}", file=sys.stderr)
        return 2


def _prune(args) -> int:
    from .pruners import DynamicPruner, FixedPruner
    from .saving import load_model, save_model_atomic

    _check_output(args.model, args.output, args.force)
    if args.mode == "genetic":
        _hardware(args)  # budget errors before the model is loaded
    model = load_model(args.model)
    options = dict(
        importance=args.importance,
        round_to=args.round_to,
        min_channels=args.min_channels,
        ignore=tuple(n for n in args.ignore.split(",") if n),
    )
    if args.mode == "genetic":
        return _prune_genetic(args, model, options)
    if args.mode == "fixed":
        pruner = FixedPruner(ratio=args.ratio, **options)
    else:
        pruner = DynamicPruner(ratios=parse_ratios(args.ratios), **options)
    pruned = pruner.fit(model).transform()
    save_model_atomic(pruned, args.output)
    print(_channel_table(pruner))
    print(f"params {model.count_params():,} -> {pruned.count_params():,}; written to {args.output}")
    return 0


def _prune_genetic(args, model, options) -> int:
    import json

    from .data import load_npz
    from .genetic import GeneticPruner
    from .saving import save_model_atomic

    hardware = _hardware(args)
    data = load_npz(args.data)
    validation = load_npz(args.val) if args.val is not None else None
    pruner = GeneticPruner(
        hardware,
        population=args.population,
        generations=args.generations,
        finetune_epochs=args.finetune_epochs,
        finalists=args.finalists,
        validation_split=args.validation_split,
        algorithm=args.algorithm,
        checkpoint=str(args.checkpoint) if args.checkpoint else None,
        n_jobs=args.n_jobs,
        seed=args.seed,
        verbose=0 if args.json else 1,
        **options,
    )
    pruned = pruner.fit(model, data, validation_data=validation).transform()
    save_model_atomic(pruned, args.output)
    fp = pruner.footprint_
    if args.json:
        print(
            json.dumps(
                {
                    "output": str(args.output),
                    "budget": {
                        "name": hardware.name,
                        "ram": hardware.ram,
                        "flash": hardware.flash,
                        "macs": hardware.macs,
                    },
                    "ratios": pruner.best_ratios_,
                    "validation_score": pruner.best_score_,
                    "baseline_validation_score": pruner.baseline_score_,
                    "estimate": {"ram": fp.ram, "flash": fp.flash, "macs": fp.macs, "params": fp.params},
                    "fits": hardware.fits(fp),
                    "finalists": pruner.finalists_,
                    "history": pruner.history_,
                    "search_seconds": pruner.search_seconds_,
                },
                indent=2,
            )
        )
        return 0
    print(_channel_table(pruner))
    baseline = "" if pruner.baseline_score_ is None else f" (unpruned {pruner.baseline_score_:.4f})"
    print(
        f"estimated RAM {fp.ram:,} B, Flash {fp.flash:,} B, MACs {fp.macs:,} against budget '{hardware.name}' "
        f"(RAM {_limit(hardware.ram, ' B')}, Flash {_limit(hardware.flash, ' B')}, MACs {_limit(hardware.macs, '')})"
    )
    print(f"validation {pruner.score_name_} {pruner.best_score_:.4f}{baseline}; written to {args.output}")
    return 0


def _limit(value, unit: str) -> str:
    return "unlimited" if value is None else f"{value:,}{unit}"


def _hardware(args):
    from .hardware.profile import HardwareProfile

    given = [v is not None for v in (args.ram, args.flash, args.macs)]
    if args.preset and any(given):
        raise CliError("give either --preset or --ram/--flash/--macs, not both")
    if args.preset:
        return HardwareProfile.preset(args.preset)
    if not any(given):
        raise CliError("give a budget: --preset NAME or at least one of --ram, --flash, --macs")
    return HardwareProfile(ram=args.ram, flash=args.flash, macs=args.macs, name="command line")


_UNITS = {"": 1, "k": 1e3, "m": 1e6, "kb": 1e3, "mb": 1e6, "kib": 1024, "mib": 1024**2, "b": 1}


def _amount(text: str) -> int:
    """``"76800"``, ``"75KiB"``, ``"100KB"``, ``"1.5M"`` → an integer (KB/k = 1000, KiB = 1024)."""
    import re

    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not an amount such as 76800, 75KiB, 100KB or 1.5M")
    return round(float(match.group(1)) * _UNITS[unit])


def parse_ratios(text: str):
    """``"0.5,0.2"`` → [0.5, 0.2]; ``"conv1=0.5,fc=0.2"`` → {"conv1": 0.5, "fc": 0.2}."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise CliError("--ratios is empty")
    named = ["=" in item for item in items]
    if any(named) and not all(named):
        raise CliError("--ratios mixes NAME=R and plain values; use one form")
    try:
        if all(named):
            return {name.strip(): float(value) for name, value in (item.split("=", 1) for item in items)}
        return [float(item) for item in items]
    except ValueError:
        raise CliError(f"--ratios must hold numbers, got {text!r}") from None


def _check_output(source: Path, output: Path, force: bool) -> None:
    from .saving import check_model_suffix

    check_model_suffix(output, "output")
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        raise CliError(f"output '{output}' is the input model; choose another path")
    if output.exists() and not force:
        raise CliError(f"output '{output}' exists; pass --force to replace it")


def _channel_table(pruner) -> str:
    rows = [("group", "before", "after", "ratio")]
    for name, (before, after) in pruner.channels_.items():
        rows.append((name, str(before), str(after), f"{pruner.ratios_[name]:.2f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join([r[0].ljust(widths[0])] + [r[i].rjust(widths[i]) for i in range(1, 4)]) for r in rows)


def _demo(args) -> int:
    from .macs import total_macs
    from .pruners import FixedPruner
    from .zoo import seed_mobilenet

    model = seed_mobilenet()
    print(f"Seed model: MobileNetV1 alpha 0.25, 96x96x3, head 64-32-2 (untrained), {len(model.layers)} layers")
    start = time.perf_counter()
    pruner = FixedPruner(ratio=args.ratio).fit(model)
    pruned = pruner.transform()
    elapsed = time.perf_counter() - start
    print(f"\nFixedPruner(ratio={args.ratio}): channels per prunable group")
    print(_channel_table(pruner))
    before, after = total_macs(model), total_macs(pruned)
    print(
        f"\nparams {model.count_params():,} -> {pruned.count_params():,} "
        f"({pruned.count_params() / model.count_params():.1%}); "
        f"MACs {before:,} -> {after:,} ({after / before:.1%}); fit+transform {elapsed:.2f} s"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
