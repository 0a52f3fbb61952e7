"""A progress bar for long steps: redrawn in place on a terminal, a line per tenth in a log."""

from __future__ import annotations

import sys
import time

__all__ = ["Bar"]

WIDTH = 30


class Bar:
    def __init__(self, label: str, total: int, stream=None):
        self.label = label
        self.total = max(int(total), 1)
        self.stream = stream or sys.stdout
        self.started = time.perf_counter()
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._tenth = -1
        self.done = 0

    def update(self, done: int, note: str = "") -> None:
        self.done = min(int(done), self.total)
        share = self.done / self.total
        elapsed = time.perf_counter() - self.started
        text = (f"{self.label:<28} [{'#' * int(WIDTH * share):<{WIDTH}}] {self.done}/{self.total} "
                f"{elapsed:6.1f} s {note}")
        if self._tty:
            self.stream.write("\r" + text)
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif int(10 * share) > self._tenth:
            self._tenth = int(10 * share)
            print(text, file=self.stream, flush=True)

    def step(self, note: str = "") -> None:
        self.update(self.done + 1, note)
