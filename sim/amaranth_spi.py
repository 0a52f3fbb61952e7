"""An SPI mode 0 controller for Amaranth's simulator (the fast unit-test loop).

The cocotb benches use `sim.spi_master.SPIMaster` on the generated Verilog; both send the frames that
`host.frames` builds, so the protocol is written once.
"""

from __future__ import annotations

__all__ = ["AmaranthSPIMaster"]


class AmaranthSPIMaster:
    """Drives a `SPIPins` interface from an async testbench: `await spi.transfer(ctx, frame)`.

    `divider` is system clock cycles per SCK period (4 to 64); odd dividers give an asymmetric duty cycle,
    as a real controller dividing an unrelated clock would.
    """

    def __init__(self, pins, divider: int):
        if divider < 4:
            raise ValueError(f"SCK divider {divider} is below 4: the target oversamples SCK")
        self.pins = pins
        self.high = divider // 2
        self.low = divider - self.high

    async def _wait(self, ctx, cycles: int):
        await ctx.tick().repeat(cycles)

    async def transfer(self, ctx, frame: bytes, bits: int | None = None, gap: int = 4) -> bytes:
        """Clock `bits` bits of `frame` (all by default), MSB first, and return what CIPO carried."""
        bits = 8 * len(frame) if bits is None else bits
        received = bytearray(len(frame))
        ctx.set(self.pins.cs_n, 0)
        await self._wait(ctx, self.low)
        for index in range(bits):
            byte, bit = divmod(index, 8)
            ctx.set(self.pins.copi, (frame[byte] >> (7 - bit)) & 1)
            await self._wait(ctx, self.low)
            if ctx.get(self.pins.cipo):                       # sampled on the rising edge
                received[byte] |= 1 << (7 - bit)
            ctx.set(self.pins.sck, 1)
            await self._wait(ctx, self.high)
            ctx.set(self.pins.sck, 0)
        await self._wait(ctx, self.low)
        ctx.set(self.pins.cs_n, 1)
        await self._wait(ctx, gap)
        return bytes(received)
