"""The cocotb bench of the chip top: clock, reset, SPI master, scoreboard against the register model."""

from __future__ import annotations

import os

import cocotb
from cocotb.triggers import ClockCycles, Timer

from ..config import CONFIGS, REFERENCE
from ..protocol import ADDRESS_BYTES, READ_DUMMY_BYTES, Command
from .clock import clock_period_ps, start_clock
from .regfile_model import RegisterFileModel
from .spi_master import ShifterMaster, SPIMaster

__all__ = ["ChipBench", "config_from_env", "seed_from_env"]

READ_HEADER_BYTES = 1 + ADDRESS_BYTES + READ_DUMMY_BYTES


def config_from_env():
    """The bench's ChipConfig, named by RRAM_CIM_CONFIG (the runner sets it to match the build)."""
    return CONFIGS[os.environ.get("RRAM_CIM_CONFIG", REFERENCE.name)]


def seed_from_env() -> int:
    """A scenario's seed (devices, stimuli): RRAM_CIM_SEED (`rram-cim sim --seed`), else cocotb's random
    seed, cut to the 32 bits numpy's generators take."""
    return int(os.environ.get("RRAM_CIM_SEED", cocotb.RANDOM_SEED)) % (1 << 32)


class ChipBench:
    def __init__(self, dut, config=None):
        self.dut = dut
        self.config = config or config_from_env()
        self.clk_period_ps = clock_period_ps(self.config)
        # The target moves CIPO about 3 system cycles after a rising SCK edge (its synchronizers): give 4.
        self.spi = SPIMaster(dut, self.sck_period_ps(self.config.spi_divider), cipo_settle_ps=4 * self.clk_period_ps)
        #: The gateware SPI controller, on a co-simulation build (`sim.cosim_chip`); its inputs held at rest.
        self.shifter = ShifterMaster(dut) if hasattr(dut, "shifter__start") else None
        # The analog port's inputs; a bench that attaches the analog bridge drives them from then on.
        dut.port__sense_valid.value = 0
        dut.port__sense_code.value = 0
        self.model = RegisterFileModel(self.config)
        self.frames = 0

    def sck_period_ps(self, divider: float) -> int:
        return round(self.clk_period_ps * divider)

    async def reset(self):
        start_clock(self.dut, self.config)
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 4)            # the bench continues just after a rising edge

    async def pulse_reset(self, cycles: int = 4):
        """Reset the running chip: hold `rst` for `cycles`, then let it run for as many."""
        self.dut.rst.value = 1
        await self.cycles(cycles)
        self.dut.rst.value = 0
        await self.cycles(cycles)

    async def cycles(self, count: int):
        """Let `count` system clock cycles pass with one timer (cocotb's ClockCycles wakes Python on every
        edge, which dominates a long Verilator run)."""
        await Timer(count * self.clk_period_ps, unit="ps")

    async def checked_frame(self, frame: bytes, bits: int | None = None, context: str = "") -> bytes:
        """Send a frame and compare what came back with the model's answer; return the raw CIPO bytes."""
        miso = await self.spi.transfer(frame, bits)
        expected = self.model.frame(frame, bits)
        self.frames += 1
        where = f"frame {self.frames} {frame.hex()} bits={bits} {context}"
        assert miso[0] == expected.status if (bits is None or bits >= 8) else True, (
            f"{where}: status {miso[0]:#04x}, model says {expected.status:#04x}")
        if bits is None and frame and frame[0] == Command.READ:
            got = miso[READ_HEADER_BYTES:]
            assert got == expected.data, f"{where}: read {got.hex()}, model says {expected.data.hex()}"
        return miso
