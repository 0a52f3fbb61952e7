"""The chip top: SPI target, register decoder, memory windows and spike FIFOs.

The P&V engine, the inference sequencer, the spike router and the analog macro port join here as their
issues land; until then the counters and busy flags they will drive read as zero, and the engine-side
ports of the windows are idle.
"""

from amaranth.hdl import Cat, Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, connect

from ..config import REFERENCE, ChipConfig
from .memory_window import MemoryWindow
from .regmap.generate import load_generated
from .spi_target import SPIPins, SPITarget
from .spike_fifos import SpikeInPort, SpikeOutPort

__all__ = ["Chip"]


class Chip(wiring.Component):
    """Top level: the SPI pins are the only ports (plus Amaranth's implicit clk and rst)."""

    spi: In(SPIPins())

    def __init__(self, config: ChipConfig = REFERENCE):
        self._config = config
        super().__init__()

    def elaborate(self, platform):
        config = self._config
        decoder_module, _ = load_generated(config)
        m = Module()
        m.submodules.spi = spi = SPITarget()
        m.submodules.regs = regs = decoder_module.RegisterDecoder()

        connect(m, wiring.flipped(self.spi), spi.spi)
        connect(m, spi.bus, regs.bus)

        # Host-writable windows are read by the engines; engine-writable ones are read by the host.
        windows = {
            "pv_target":  MemoryWindow(config.cells_total, host_writable=True, engine_writable=False),
            "pv_pulses":  MemoryWindow(config.cells_total, host_writable=False, engine_writable=True),
            "failed_log": MemoryWindow(config.failed_log_depth * 4, host_writable=False, engine_writable=True),
            "routing":    MemoryWindow(config.cores * config.neurons * 2 * 4, host_writable=True,
                                       engine_writable=False),
        }
        for name, window in windows.items():
            m.submodules[name] = window
            connect(m, getattr(regs, name), window.host)

        m.submodules.spike_in = spike_in = SpikeInPort(config.input_fifo_depth)
        m.submodules.spike_out = spike_out = SpikeOutPort(config.output_fifo_depth)
        connect(m, regs.fifo_spike_in, spike_in.host)
        connect(m, regs.fifo_spike_out, spike_out.host)
        m.d.comb += [regs.fifo_in_level.count.eq(spike_in.level),
                     regs.fifo_out_level.count.eq(spike_out.level)]

        errors = regs.error
        m.d.comb += [
            errors.bad_command_set.eq(spi.bad_command),
            errors.bad_address_set.eq(spi.bad_address),
            errors.read_only_set.eq(spi.read_only),
            errors.truncated_set.eq(spi.truncated),
            errors.in_overflow_set.eq(spike_in.overflow),
            errors.out_underflow_set.eq(spike_out.underflow),
        ]
        any_error = Cat(errors.bad_command, errors.bad_address, errors.read_only, errors.truncated,
                        errors.in_overflow, errors.out_underflow).any()
        m.d.comb += [
            regs.status.error.eq(any_error),
            regs.status.out_ready.eq(spike_out.level != 0),
        ]
        status = regs.status
        m.d.comb += spi.status.eq(Cat(status.error, status.busy, status.pv_done, status.out_ready))
        return m
