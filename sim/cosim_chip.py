"""The chip as the co-simulation builds it: `rtl.chip.Chip` with `sim.spi_shifter.SPIShifter` on its SPI pins.

The shifter drives the pins while its CS is low; otherwise the top's own `spi` pins reach the chip, so the
cocotb benches' `SPIMaster` (edges anywhere in a cycle) and the co-simulation transport's shifter (a frame
per few wake-ups) run on one build. `rram-cim verilog` writes the chip without it.
"""

from __future__ import annotations

from amaranth import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from ..config import REFERENCE, ChipConfig
from ..rtl.analog_port import AnalogPort
from ..rtl.chip import Chip
from ..rtl.spi_target import SPIPins
from .spi_shifter import ShifterControls, SPIShifter

__all__ = ["CosimChip"]


class CosimChip(wiring.Component):
    """`spi` and `shifter` in, the analog `port` out; SCK from the shifter at the config's SPI clock."""

    def __init__(self, config: ChipConfig = REFERENCE):
        self._config = config
        super().__init__({"spi": In(SPIPins()), "shifter": Out(ShifterControls()), "port": Out(AnalogPort(config))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.chip = chip = Chip(self._config)
        high = self._config.spi_divider // 2        # SPIMaster splits a period the same way
        m.submodules.shifter = shifter = SPIShifter(high, self._config.spi_divider - high)
        connect(m, flipped(self.port), chip.port)
        connect(m, flipped(self.shifter), shifter.controls)
        ours = ~shifter.spi.cs_n
        m.d.comb += [
            chip.spi.cs_n.eq(shifter.spi.cs_n & self.spi.cs_n),
            chip.spi.sck.eq(Mux(ours, shifter.spi.sck, self.spi.sck)),
            chip.spi.copi.eq(Mux(ours, shifter.spi.copi, self.spi.copi)),
            shifter.spi.cipo.eq(chip.spi.cipo),
            self.spi.cipo.eq(chip.spi.cipo),
            self.spi.cipo_oe.eq(chip.spi.cipo_oe),
        ]
        return m
