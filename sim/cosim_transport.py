"""The co-simulation transport: host code (blocking, as on a real host) drives the simulated chip's SPI
pins. The host code runs in a cocotb bridge thread; each frame or idle period resumes the simulator
until it is done, so the same `RegisterClient` and `Programmer` serve a board and the RTL alike.

    transport = CocotbTransport(spi_master)
    result = await bridge(lambda: Programmer(RegisterClient(transport, TABLE), config).program(...))()
"""

from __future__ import annotations

from cocotb.task import resume
from cocotb.triggers import Timer

from .clock import PS_PER_SECOND
from .spi_master import ShifterMaster, SPIMaster

__all__ = ["CocotbTransport", "wait_seconds"]


class CocotbTransport:
    def __init__(self, spi: SPIMaster | ShifterMaster):
        self.spi = spi
        self.frames = 0

    def exchange(self, frame: bytes) -> bytes:
        self.frames += 1
        return resume(self.spi.transfer)(frame)

    def idle(self, seconds: float) -> None:
        resume(wait_seconds)(seconds)


async def wait_seconds(seconds: float) -> None:
    """Let `seconds` of simulated time pass (at least a picosecond)."""
    await Timer(max(1, round(seconds * PS_PER_SECOND)), unit="ps")
