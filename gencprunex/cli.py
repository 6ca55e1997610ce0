"""The ``gencprunex`` command line.

Every failure caused by input ends in one line on stderr and exit status 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
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
    _add_profile_and_export(commands)

    demo = commands.add_parser(
        "demo", help="train the seed's MobileNet on bundled digits, prune it four ways, print the measured table"
    )
    demo.add_argument("-o", "--output", type=Path, default=Path("gencprunex-demo"), help="folder for the results")
    demo.add_argument("--epochs", type=int, help="training epochs of the baseline (default 25)")
    demo.add_argument("--generations", type=int, help="generations of the genetic search (default 8)")
    demo.add_argument("--quick", action="store_true", help="a tiny version that runs in seconds (a smoke test)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gencprunex`` console script."""
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    try:
        if args.command == "prune":
            return _prune(args)
        if args.command == "profile":
            return _profile(args)
        if args.command == "export":
            return _export(args)
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


_IO_TYPES = ("int8", "uint8", "float32")  # gencprunex.export.INFERENCE_TYPES, spelled out so --help imports nothing
_C_ARRAY_SUFFIXES = (".cc", ".cpp", ".h", ".hpp")  # to_c_array writes C++ (alignas, <cstdint>), so no .c
_GREEN, _RED, _RESET = "\033[32m", "\033[31m", "\033[0m"


def _add_profile_and_export(commands) -> None:
    profile = commands.add_parser("profile", help="RAM, Flash and MACs of a saved model on TFLite Micro, per op")
    profile.add_argument("model", type=Path)
    profile.add_argument("--preset", help="compare with a board's budgets (see HardwareProfile.presets())")
    profile.add_argument("--ram", type=_amount, help="RAM budget in bytes (or 75KiB, 0.5MiB)")
    profile.add_argument("--flash", type=_amount, help="Flash budget in bytes (or 100KiB)")
    profile.add_argument("--macs", type=_amount, help="MACs budget per inference (or 1.5M)")
    profile.add_argument(
        "--measure", action="store_true", help="convert to int8 TFLite and read the file (default: estimate)"
    )
    profile.add_argument("--data", type=Path, help="calibration data for --measure (.npz: features/images, labels)")
    profile.add_argument("--json", action="store_true", help="print the footprint as JSON instead of a table")
    export = commands.add_parser("export", help="convert a saved model to an int8 .tflite file and a C array")
    export.add_argument("model", type=Path)
    export.add_argument("-o", "--output", type=Path, required=True, help="where to write the .tflite file")
    export.add_argument("--c-array", type=Path, help="also write the model as a C++ array (.cc, .cpp, .h or .hpp)")
    export.add_argument("--data", type=Path, help="calibration data (.npz); default: random data, with a warning")
    export.add_argument("--name", help="name of the C array (default model_data); needs --c-array")
    export.add_argument("--force", action="store_true", help="replace output files that exist")
    for sub in (profile, export):
        sub.add_argument("--input-type", default="int8", choices=_IO_TYPES, help="dtype of the model input")
        sub.add_argument("--output-type", default="int8", choices=_IO_TYPES, help="dtype of the model output(s)")


def _profile(args) -> int:
    import json

    from .hardware.profile import HardwareProfile
    from .saving import load_model

    given = [v is not None for v in (args.preset, args.ram, args.flash, args.macs)]
    budget = _hardware(args) if any(given) else None  # budget errors before the model is loaded
    if args.data is not None and not args.measure:
        raise CliError("--data calibrates the conversion of --measure; give --measure too")
    data = _load_data(args.data)
    model = load_model(args.model)
    hardware = budget or HardwareProfile()
    io_types = dict(input_type=args.input_type, output_type=args.output_type)
    if args.measure:
        footprint = _with_warnings_on_stderr(hardware.measure, model, data, **io_types)
    else:
        footprint = hardware.estimate(model, **io_types)
    over = budget.violations(footprint) if budget else {}
    if args.json:
        report = {"model": str(args.model), **io_types, **footprint.to_dict()}
        report["budget"] = None
        if budget is not None:
            report["budget"] = {"name": budget.name, "ram": budget.ram, "flash": budget.flash, "macs": budget.macs}
        report["fits"] = None if budget is None else not over
        report["over"] = over
        print(json.dumps(report, indent=2, default=_json_number))
        return 0
    print(_footprint_report(args, footprint, budget, over))
    return 0


def _footprint_report(args, footprint, budget, over) -> str:
    how = {
        "estimate": "estimate, predicted from the Keras graph without conversion",
        "measure": "measure, read from the converted int8 .tflite",
    }
    method = footprint.details.get("method", "")
    io_text = _io_text(dict(input_type=args.input_type, output_type=args.output_type))
    lines = [f"{args.model}: {how.get(method, method)}; {io_text}", ""]
    lines += [_op_table(footprint.layers), ""]
    colour = _colour_stdout()
    totals = []
    quantities = (("RAM", "ram", "B"), ("Flash", "flash", "B"), ("MACs", "macs", ""), ("params", "params", ""))
    for name, key, unit in quantities:
        value = getattr(footprint, key)
        row = [name, f"{value:,}", unit, f"({value / 1024:.1f} KiB)" if unit else ""]
        limit = getattr(budget, key, None)
        if budget is not None and key != "params":
            if limit is None:
                row.append("no limit")
            elif key in over:
                row.append(_paint(f"over by {over[key]:,} {unit or 'MACs'} (limit {limit:,})", False, colour))
            else:
                row.append(_paint(f"fits (limit {limit:,}, {limit - value:,} left)", True, colour))
        totals.append(row)
    widths = [max(len(r[i]) for r in totals) for i in range(4)]
    for row in totals:
        amount = f"{row[1].rjust(widths[1])} {row[2].ljust(widths[2])}"
        lines.append("  ".join([row[0].ljust(widths[0]), amount, row[3].ljust(widths[3]), *row[4:]]).rstrip())
    details = footprint.details
    if "arena_head" in details and "arena_tail" in details:
        lines.append(
            f"RAM = arena head {details['arena_head']:,} B (activations, scratch) + tail {details['arena_tail']:,} B "
            f"(TFLM's structures, {details.get('pointer_size', 4) * 8}-bit pointers); KiB = 1024 B"
        )
    if details.get("skipped"):
        lines.append(f"skipped (not counted): {', '.join(details['skipped'])}")
    if budget is not None:
        names = {"ram": "RAM", "flash": "Flash", "macs": "MACs"}
        verdict = f"over budget '{budget.name}' on {', '.join(names[k] for k in over)}"
        verdict = verdict if over else f"fits budget '{budget.name}'"
        lines.append(_paint(verdict, not over, colour))
    return "\n".join(lines)


def _op_table(layers: list[dict]) -> str:
    rows = [("#", "op", "layer", "output shape", "MACs", "weight B", "activation B")]
    for index, row in enumerate(layers):
        shape = "x".join(str(d) for d in row.get("output_shape", [])) or "-"
        numbers = (f"{row.get(k, 0):,}" for k in ("macs", "weight_bytes", "activation_bytes"))
        rows.append((str(index), str(row.get("op", "?")), str(row.get("layer") or "-"), shape, *numbers))
    widths = [max(len(r[i]) for r in rows) for i in range(7)]
    left = (False, True, True, True, False, False, False)
    return "\n".join(
        "  ".join(c.ljust(w) if lj else c.rjust(w) for c, w, lj in zip(r, widths, left, strict=True)).rstrip()
        for r in rows
    )


def _colour_stdout() -> bool:
    try:
        tty = sys.stdout.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def _paint(text: str, good: bool, colour: bool) -> str:
    return f"{_GREEN if good else _RED}{text}{_RESET}" if colour else text


def _json_number(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _load_data(path):
    from .data import load_npz

    return None if path is None else load_npz(path)


def _with_warnings_on_stderr(function, *args, **kwargs):
    """Call ``function``; the warnings it raises go to stderr as one line each."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        try:
            return function(*args, **kwargs)
        finally:
            for line in dict.fromkeys(_first_line(w.message) for w in caught):
                print(f"gencprunex: warning: {line}", file=sys.stderr)


def _first_line(message) -> str:
    text = str(message).strip()
    return text.splitlines()[0] if text else type(message).__name__


def _export(args) -> int:
    from .export import to_c_array, to_tflite
    from .hardware.measure import measure_tflite
    from .saving import load_model, write_bytes_atomic

    _check_file_output(args.model, args.output, "-o", (".tflite",), args.force)
    if args.c_array is not None:
        if args.c_array.suffix.lower() == ".c":
            raise CliError(f"--c-array '{args.c_array}': the array is C++ (alignas, <cstdint>); name it .cc or .h")
        _check_file_output(args.model, args.c_array, "--c-array", _C_ARRAY_SUFFIXES, args.force)
    elif args.name is not None:
        raise CliError("--name names the C array; give --c-array too")
    name = "model_data" if args.name is None else args.name
    to_c_array(b"\0", name=name)  # a bad name fails now, not after the conversion
    data = _load_data(args.data)
    model = load_model(args.model)
    io_types = dict(input_type=args.input_type, output_type=args.output_type)
    tflite = _with_warnings_on_stderr(to_tflite, model, data, path=args.output, **io_types)
    size = f"{len(tflite):,} B ({len(tflite) / 1024:.1f} KiB)"
    print(f"wrote {args.output}: {size}, full-integer int8, {_io_text(io_types)}")
    if args.c_array is not None:
        source = to_c_array(tflite, name=name).encode()
        write_bytes_atomic(args.c_array, source)
        print(f"wrote {args.c_array}: C++ array '{name}' of {len(tflite):,} bytes ({len(source):,} B of source)")
    fp = measure_tflite(tflite)
    print(
        f"measured: RAM {fp.ram:,} B ({fp.ram / 1024:.1f} KiB), Flash {fp.flash:,} B ({fp.flash / 1024:.1f} KiB), "
        f"MACs {fp.macs:,}, params {fp.params:,}"
    )
    return 0


def _io_text(io_types: dict) -> str:
    return f"input {io_types['input_type']}, output {io_types['output_type']}"


def _check_file_output(source: Path, output: Path, flag: str, suffixes: tuple[str, ...], force: bool) -> None:
    if output.suffix.lower() not in suffixes:
        raise CliError(f"{flag} '{output}' must end in {', '.join(suffixes)}")
    if output.exists() and source.exists() and output.resolve() == source.resolve():
        raise CliError(f"{flag} '{output}' is the input model; choose another path")
    if output.is_dir():
        raise CliError(f"{flag} '{output}' is a folder; give a file name")
    if output.exists() and not force:
        raise CliError(f"output '{output}' exists; pass --force to replace it")


def _demo(args) -> int:
    from dataclasses import replace

    from .demo import DemoSettings, run_demo

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    for name in ("epochs", "generations"):
        value = getattr(args, name)
        if value is not None:
            if value < (1 if name == "epochs" else 0):
                raise CliError(f"--{name} must be >= {1 if name == 'epochs' else 0}, got {value}")
            settings = replace(settings, **{name: value})
    if args.output.exists() and not args.output.is_dir():
        raise CliError(f"output '{args.output}' exists and is not a folder")
    run_demo(args.output, settings, log=lambda text: print(text, flush=True))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
