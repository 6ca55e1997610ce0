"""A one-line progress bar for the search: generation, best feasible score and its footprint.

On a terminal the line is redrawn in place; elsewhere (logs, CI) one line per generation is printed.
``verbose=0`` prints nothing.
"""

from __future__ import annotations

import sys


def human_bytes(value: float) -> str:
    """``value`` bytes in KiB (1024 bytes) with one decimal."""
    return f"{value / 1024:.1f} KiB"


def human_count(value: float) -> str:
    """A count with an M or k suffix."""
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return str(int(value))


class Progress:
    """Prints search progress to ``stream`` (stderr by default) when ``verbose`` > 0."""

    def __init__(self, total: int, verbose: int, score_name: str = "accuracy", stream=None, width: int = 20) -> None:
        self.total = total
        self.verbose = verbose
        self.score_name = score_name
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.inline = verbose == 1 and getattr(self.stream, "isatty", lambda: False)()

    def message(self, text: str) -> None:
        """A line of its own (setup, resume, summary)."""
        if self.verbose:
            self._end_inline()
            print(text, file=self.stream, flush=True)

    def update(self, generation: int, entry: dict) -> None:
        """Show the state after ``generation`` (0 is the initial population) from a history entry."""
        if not self.verbose:
            return
        done = round(self.width * generation / max(self.total, 1))
        bar = "#" * done + "-" * (self.width - done)
        best = entry.get("best")
        if best is None:
            what = "no candidate fits yet"
        else:
            what = (
                f"best {self.score_name} {best:.4f} (RAM {human_bytes(entry['best_ram'])}, "
                f"Flash {human_bytes(entry['best_flash'])}, MACs {human_count(entry['best_macs'])})"
            )
        line = (
            f"gen {generation:>3}/{self.total} [{bar}] {what} | fits {entry['feasible'] * 100:.0f}% "
            f"| {entry['evaluations']} evaluated | {entry['seconds']:.1f}s"
        )
        if self.inline:
            print("\r" + line, end="", file=self.stream, flush=True)
            self._open = True
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        self._end_inline()

    def _end_inline(self) -> None:
        if getattr(self, "_open", False):
            print(file=self.stream, flush=True)
            self._open = False
