"""The system clock of a cocotb bench: its period from the `ChipConfig`, and the clock started on `dut.clk`."""

from __future__ import annotations

from cocotb.clock import Clock

from ..config import ChipConfig

__all__ = ["PS_PER_SECOND", "clock_period_ps", "start_clock"]

PS_PER_SECOND = 10 ** 12


def clock_period_ps(config: ChipConfig) -> int:
    """One system clock period in picoseconds, rounded to an even number so that the clock's high and low
    halves are equal (the simulators' time step is a picosecond)."""
    return 2 * round(PS_PER_SECOND / config.sys_clk_hz / 2)


def start_clock(dut, config: ChipConfig) -> int:
    """Start `dut.clk` at the config's system clock; return its period in picoseconds."""
    period = clock_period_ps(config)
    # Toggled by the simulator interface in C++ ("gpi"), not by a Python task: a Python clock costs two
    # wake-ups a cycle, which held Verilator to ~115,000 cycles per second with nothing else running.
    Clock(dut.clk, period, unit="ps", impl="gpi").start()
    return period
