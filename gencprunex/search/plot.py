"""The Pareto plot of a genetic search: score against RAM, Flash and MACs, budgets drawn in (needs matplotlib)."""

from __future__ import annotations

import io
from pathlib import Path

from ..errors import ParameterError
from ..saving import write_bytes_atomic


def plot_pareto(pruner, path=None):
    """A figure with one panel per footprint figure; the chosen candidate and the budgets are marked.

    ``pruner`` is a fitted :class:`~gencprunex.GeneticPruner`. Saved to ``path`` atomically when given.
    """
    try:
        import matplotlib

        if path is not None:
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ParameterError("the Pareto plot needs matplotlib: pip install matplotlib") from None
    hardware = pruner._settings()["hardware"]
    points = pruner.pareto_
    chosen = pruner.best_ratios_
    panels = (("ram", "RAM (KiB)", 1024), ("flash", "Flash (KiB)", 1024), ("macs", "MACs (millions)", 1e6))
    figure, axes = plt.subplots(1, 3, figsize=(13, 4), sharey=True)
    for axis, (key, label, scale) in zip(axes, panels, strict=True):
        xs = [p[key] / scale for p in points]
        ys = [p["score"] for p in points]
        axis.scatter(xs, ys, s=18, color="tab:blue", label="Pareto candidates")
        best = [p for p in points if p["ratios"] == chosen]
        if best:
            axis.scatter([best[0][key] / scale], [best[0]["score"]], s=80, marker="*", color="tab:red", label="chosen")
        limit = getattr(hardware, key)
        if limit is not None:
            axis.axvline(limit / scale, color="tab:gray", linestyle="--", label=f"budget ({hardware.name})")
        axis.set_xlabel(label)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel(f"validation {pruner.score_name_}")
    axes[0].legend(loc="lower right", fontsize=8)
    figure.suptitle(f"GeneticPruner on '{pruner.graph_.model.name}': score vs footprint")
    figure.tight_layout()
    if path is not None:
        image = io.BytesIO()
        figure.savefig(image, format=Path(path).suffix.lstrip(".") or "png", dpi=120)
        write_bytes_atomic(Path(path), image.getvalue())
    return figure
