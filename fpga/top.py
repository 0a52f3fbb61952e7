"""The chip for an FPGA: the same `rtl.chip.Chip`, its analog port answered by the emulated macro.

`FpgaChip` keeps the chip's SPI pins, so a cocotb bench or a board's bridge drives it as it drives the
ASIC. The chip's own memories are block RAM (its P&V memory is two slots, not a byte per cell); the
emulated macro keeps its cells in the iCE40UP5K's SPRAM (`fpga.spram`).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from ..config import REFERENCE, ChipConfig
from ..rtl.chip import Chip
from ..rtl.spi_target import SPIPins
from .emulated_macro import EmulatedMacro
from .uart_bridge import UartSpiBridge

__all__ = ["FpgaChip", "UartChip", "UART_BAUD"]

#: The host link's rate: 1 Mbaud divides the iCEBreaker's 12 MHz and the ULX3S's 25 MHz exactly, and
#: both boards' USB bridges (FT2232H, FT231X) run it.
UART_BAUD = 1_000_000


class FpgaChip(wiring.Component):
    def __init__(self, config: ChipConfig = REFERENCE):
        self.config = config
        super().__init__({"spi": In(SPIPins())})

    def elaborate(self, platform):
        m = Module()
        m.submodules.chip = chip = Chip(self.config)
        m.submodules.macro = macro = EmulatedMacro(self.config)
        connect(m, chip.port, macro.port)
        connect(m, wiring.flipped(self.spi), chip.spi)
        return m


class UartChip(wiring.Component):
    """`FpgaChip` behind the UART-to-SPI-frame bridge: what a board top puts on its USB serial pins."""

    def __init__(self, config: ChipConfig = REFERENCE, baud: int = UART_BAUD):
        divisor = config.sys_clk_hz / baud
        if abs(divisor - round(divisor)) > 0.02 * divisor:
            raise ValueError(f"{baud} baud is not within 2 % of a whole divisor of {config.sys_clk_hz / 1e6} MHz")
        self.config = config
        self.divisor = round(divisor)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "active": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.chip = chip = FpgaChip(self.config)
        m.submodules.bridge = bridge = UartSpiBridge(self.divisor)
        connect(m, bridge.spi, chip.spi)
        m.d.comb += [bridge.rx.eq(self.rx), self.tx.eq(bridge.tx), self.active.eq(bridge.active)]
        return m
