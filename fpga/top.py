"""The chip for an FPGA: the same `rtl.chip.Chip`, its analog port answered by the emulated macro.

`FpgaChip` keeps the chip's SPI pins, so a cocotb bench or a board's bridge drives it as it drives the
ASIC. The per-cell windows are single-port memories (the iCE40UP5K's SPRAM), owned by the P&V engine
while it runs.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, connect

from ..config import REFERENCE, ChipConfig
from ..rtl.chip import Chip
from ..rtl.spi_target import SPIPins
from .emulated_macro import EmulatedMacro

__all__ = ["FpgaChip"]


class FpgaChip(wiring.Component):
    def __init__(self, config: ChipConfig = REFERENCE):
        self.config = config
        super().__init__({"spi": In(SPIPins())})

    def elaborate(self, platform):
        m = Module()
        m.submodules.chip = chip = Chip(self.config, single_port_windows=True)
        m.submodules.macro = macro = EmulatedMacro(self.config)
        connect(m, chip.port, macro.port)
        connect(m, wiring.flipped(self.spi), chip.spi)
        return m
