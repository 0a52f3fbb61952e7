"""Progress for long steps, so that no minute passes in silence: `Bar` for a step that knows its total,
`Ticker` for one that does not (a compiler, place and route). Both redraw one line in place on a terminal
and print a line now and then in a log."""

from __future__ import annotations

import sys
import threading
import time

__all__ = ["Bar", "Ticker"]

WIDTH = 30


class Bar:
    def __init__(self, label: str, total: int, stream=None):
        self.label = label
        self.total = max(int(total), 1)
        self.stream = stream or sys.stdout
        self.started = time.perf_counter()
        self._tty = _is_tty(self.stream)
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


class Ticker:
    """Elapsed time of a step whose length is not known in advance, from a background thread: redrawn
    every second on a terminal, a line every `log_every_s` in a log, and a last line when the step ends
    (only if a line was shown before it, so that short steps stay quiet).

        with Ticker("verilator build of rram_cim_chip", note=lambda: "place and route"):
            ...

    `note` is called from the ticker's thread and says what the step is doing now.
    """

    def __init__(self, label: str, stream=None, note=None, log_every_s: float = 15.0):
        self.label = label
        self.stream = stream or sys.stdout
        self.note = note or (lambda: "")
        self._tty = _is_tty(self.stream)
        self._every_s = 1.0 if self._tty else log_every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick, name=f"ticker: {label}", daemon=True)
        self._shown = False
        self.started = 0.0

    def __enter__(self) -> "Ticker":
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, kind, error, trace) -> None:
        self._stop.set()
        self._thread.join()
        if self._shown:
            self._show("done" if kind is None else "failed", final=True)

    def _tick(self) -> None:
        while not self._stop.wait(self._every_s):
            self._show(self._safe_note())

    def _safe_note(self) -> str:
        try:
            return self.note()
        except OSError:                   # a file the note looks at, mid-rewrite
            return ""

    def _show(self, note: str, final: bool = False) -> None:
        text = f"{self.label:<28} {time.perf_counter() - self.started:6.0f} s {note}"
        if self._tty:
            self.stream.write(f"\r{text:<79}" + ("\n" if final else ""))
            self.stream.flush()
        else:
            print(text, file=self.stream, flush=True)
        self._shown = True


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
