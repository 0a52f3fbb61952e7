"""Constrained-random SPI frames, valid and malformed, for the register-file campaign."""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..host.frames import nop_frame, read_frame, write_frame
from ..protocol import Command, RegisterTable

__all__ = ["RandomFrame", "FrameGenerator"]

MAX_BURST = 8


@dataclass(frozen=True)
class RandomFrame:
    kind: str
    frame: bytes
    #: Bits the host clocks before raising chip select; None for the whole frame.
    bits: int | None = None


class FrameGenerator:
    """Draws frames around the interesting places of the map: starts, ends and holes of every register
    and window, read-only bytes, the FIFO ports, the sticky error register."""

    def __init__(self, table: RegisterTable, rng: random.Random):
        self.rng = rng
        self.table = table
        items = [*table.registers, *table.windows]
        self._starts = [item.address for item in items]
        self._ends = [item.address + item.size - 1 for item in items]
        # CTRL starts the engines; their effects are the business of their own benches, not of a
        # register-file campaign, so random frames never write it.
        self._writable = [r for r in table.registers if r.sw_writable and r.name != "ctrl"] + [
            w for w in table.windows if w.sw_writable]
        self._read_only = [r for r in table.registers if not r.sw_writable] + [
            w for w in table.windows if not w.sw_writable]
        self._kinds = [
            ("write", 30), ("read", 30), ("write-read-only", 5), ("unmapped", 5), ("bad-command", 4),
            ("nop", 3), ("truncated", 12), ("run-off", 6), ("spike-in", 3), ("spike-out", 1),
            ("clear-errors", 4),
        ]

    def _address_in(self, item) -> int:
        r = self.rng.random()
        if r < 0.3:
            return item.address
        if r < 0.5:
            return item.address + item.size - 1
        return item.address + self.rng.randrange(item.size)

    def _data(self, n: int) -> bytes:
        return bytes(self.rng.randrange(256) for _ in range(n))

    def _unmapped(self) -> int:
        while True:
            base = self.rng.choice(self._ends) + 1 + self.rng.randrange(4)
            if self.rng.random() < 0.1:
                base = self.rng.randrange(1 << 24)
            if self.table.locate(base) is None:
                return base

    def next(self) -> RandomFrame:
        while True:
            frame = self._draw()
            if not self._writes_ctrl(frame.frame):
                return frame

    def _writes_ctrl(self, frame: bytes) -> bool:
        if len(frame) < 5 or frame[0] != Command.WRITE:
            return False
        start = int.from_bytes(frame[1:4], "big")
        ctrl = self.table.register("ctrl").address
        return start <= ctrl < start + len(frame) - 4

    def _draw(self) -> RandomFrame:
        kind = self.rng.choices([k for k, _ in self._kinds], [w for _, w in self._kinds])[0]
        rng = self.rng
        if kind == "write":
            item = rng.choice(self._writable)
            address = self._address_in(item)
            length = min(rng.randint(1, MAX_BURST), item.address + item.size - address)
            return RandomFrame(kind, write_frame(address, self._data(length)))
        if kind == "read":
            item = rng.choice([*self.table.registers, *self.table.windows])
            address = self._address_in(item)
            length = min(rng.randint(0, MAX_BURST), item.address + item.size - address)
            return RandomFrame(kind, read_frame(address, length))
        if kind == "write-read-only":
            item = rng.choice(self._read_only)
            return RandomFrame(kind, write_frame(self._address_in(item), self._data(rng.randint(1, 3))))
        if kind == "unmapped":
            maker = rng.choice([lambda a: write_frame(a, self._data(2)), lambda a: read_frame(a, 2)])
            return RandomFrame(kind, maker(self._unmapped()))
        if kind == "bad-command":
            command = rng.choice([c for c in range(256) if c not in set(Command)])
            return RandomFrame(kind, bytes([command]) + self._data(rng.randint(0, 6)))
        if kind == "nop":
            return RandomFrame(kind, nop_frame() + self._data(rng.randint(0, 3)))
        if kind == "truncated":
            inner = self.next()
            while inner.bits is not None or len(inner.frame) == 0:
                inner = self.next()
            return RandomFrame(kind, inner.frame, rng.randrange(8 * len(inner.frame)))
        if kind == "run-off":
            end = rng.choice(self._ends)
            maker = rng.choice([lambda a: write_frame(a, self._data(4)), lambda a: read_frame(a, 4)])
            return RandomFrame(kind, maker(end - rng.randrange(2)))
        if kind == "spike-in":
            return RandomFrame(kind, write_frame(self.table.register("fifo_spike_in").address, self._data(2)))
        if kind == "spike-out":
            return RandomFrame(kind, read_frame(self.table.register("fifo_spike_out").address, 2))
        return RandomFrame(kind, write_frame(self.table.register("error").address, b"\xff"))
