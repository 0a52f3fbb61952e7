"""A byte-wide single-port RAM, portable: `lib.memory` with one address for reads and writes.

One read or write per cycle, read data the cycle after the address; during a write the read output
holds. An FPGA whose large RAMs have one port builds its own with these ports and this timing (the
iCE40UP5K's SPRAM: `fpga.spram.SinglePortSPRAM`) and hands it to the chip as a factory.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["SinglePortRAM"]


class SinglePortRAM(wiring.Component):
    """`depth` bytes; `init` gives initial contents."""

    def __init__(self, depth: int, init: list[int] | None = None):
        self.depth = depth
        self._init = list(init or [])
        self._memory = None
        super().__init__({"addr": In(range(depth)), "w_en": In(1), "w_data": In(8), "r_data": Out(8)})

    @property
    def memory(self) -> Memory:
        """The generic memory, made when first asked for: tests preload it."""
        if self._memory is None:
            self._memory = Memory(shape=8, depth=self.depth, init=self._init)
        return self._memory

    def elaborate(self, platform):
        m = Module()
        m.submodules.memory = memory = self.memory
        read, write = memory.read_port(), memory.write_port()
        m.d.comb += [read.addr.eq(self.addr), write.addr.eq(self.addr), read.en.eq(~self.w_en),
                     write.en.eq(self.w_en), write.data.eq(self.w_data), self.r_data.eq(read.data)]
        return m
