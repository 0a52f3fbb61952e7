"""A byte-wide single-port RAM: block RAM in simulation and on most FPGAs, SPRAM on the iCE40UP5K.

The UP5K's four 32 KiB SPRAMs (SB_SPRAM256KA, 16K x 16 bits, one port, no initial contents) are where
the chip's 8 KiB per-cell memories fit; its 30 small block RAMs could not hold them. Yosys does not infer
SPRAM from a memory with initial values, and Amaranth always gives memories some, so on that device the
RAM is instantiated. One read or write per cycle, read data the cycle after the address; during a write
the read output holds.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["SinglePortRAM", "SPRAM_BYTES", "has_spram"]

#: One SB_SPRAM256KA: 16K words of 16 bits, written by nibble (MASKWREN).
SPRAM_WORDS = 1 << 14
SPRAM_BYTES = 2 * SPRAM_WORDS
LOW_BYTE, HIGH_BYTE = 0b0011, 0b1100


def has_spram(platform) -> bool:
    return str(getattr(platform, "device", "")).startswith("iCE40UP")


class SinglePortRAM(wiring.Component):
    """`depth` bytes; `init` (simulation and block RAM only) gives initial contents."""

    def __init__(self, depth: int, init: list[int] | None = None):
        self.depth = depth
        self._init = list(init or [])
        self._memory = None
        super().__init__({"addr": In(range(depth)), "w_en": In(1), "w_data": In(8), "r_data": Out(8)})

    @property
    def memory(self) -> Memory:
        """The generic memory (simulation, block RAM), made when first asked for: tests preload it."""
        if self._memory is None:
            self._memory = Memory(shape=8, depth=self.depth, init=self._init)
        return self._memory

    def elaborate(self, platform):
        if has_spram(platform) and self._init:
            raise ValueError("SPRAM has no initial contents: clear the memory after reset instead")
        m = Module()
        if has_spram(platform):
            return self._spram(m)
        m.submodules.memory = memory = self.memory
        read, write = memory.read_port(), memory.write_port()
        m.d.comb += [read.addr.eq(self.addr), write.addr.eq(self.addr), read.en.eq(~self.w_en),
                     write.en.eq(self.w_en), write.data.eq(self.w_data), self.r_data.eq(read.data)]
        return m

    def _spram(self, m):
        """Bytes packed two per 16-bit word, in as many SPRAMs as the depth needs."""
        blocks = -(-self.depth // SPRAM_BYTES)
        high, word, block = Signal(), Signal(14), Signal(range(max(blocks, 2)))
        m.d.comb += Cat(high, word, block).eq(self.addr)
        high_read, block_read = Signal(), Signal.like(block)
        m.d.sync += [high_read.eq(high), block_read.eq(block)]
        for index in range(blocks):
            data_out = Signal(16, name=f"spram{index}_data")
            m.submodules[f"spram{index}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=word, i_DATAIN=Cat(self.w_data, self.w_data),
                i_MASKWREN=Mux(high, HIGH_BYTE, LOW_BYTE), i_WREN=self.w_en & (block == index),
                i_CHIPSELECT=1, i_CLOCK=ClockSignal("sync"), i_STANDBY=0, i_SLEEP=0, i_POWEROFF=1,
                o_DATAOUT=data_out)
            with m.If(block_read == index):
                m.d.comb += self.r_data.eq(Mux(high_read, data_out[8:], data_out[:8]))
        return m
