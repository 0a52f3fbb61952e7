"""The chip's single-port RAM as SPRAM on the iCE40UP5K, and as the portable memory anywhere else.

The UP5K's four 32 KiB SPRAMs (SB_SPRAM256KA, 16K x 16 bits, one port, no initial contents) are where
the chip's 8 KiB per-cell memories fit; its 30 small block RAMs could not hold them. Yosys does not infer
SPRAM from a memory with initial values, and Amaranth always gives memories some, so on that device the
RAM is instantiated. The vendor primitive lives here, not in rtl/: the chip takes its window RAM as a
factory (`rtl.chip.Chip(config, window_ram=SinglePortSPRAM)`).
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Instance, Module, Mux, Signal

from ..rtl.single_port_ram import SinglePortRAM

__all__ = ["SinglePortSPRAM", "SPRAM_BYTES", "has_spram"]

#: One SB_SPRAM256KA: 16K words of 16 bits, written by nibble (MASKWREN).
SPRAM_WORDS = 1 << 14
SPRAM_BYTES = 2 * SPRAM_WORDS
LOW_BYTE, HIGH_BYTE = 0b0011, 0b1100


def has_spram(platform) -> bool:
    return str(getattr(platform, "device", "")).startswith("iCE40UP")


class SinglePortSPRAM(SinglePortRAM):
    """`SinglePortRAM` in SPRAM when the platform has it (no `init` there), the portable memory otherwise:
    the same ports and timing either way (read data the cycle after the address, held during a write)."""

    def elaborate(self, platform):
        if not has_spram(platform):
            return super().elaborate(platform)
        if self._init:
            raise ValueError("SPRAM has no initial contents: clear the memory after reset instead")
        return self._spram(Module())

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
