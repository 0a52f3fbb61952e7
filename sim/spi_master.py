"""An SPI mode 0 controller for cocotb benches, driving the generated Verilog through its pins.

SCK is timed from its own period, not from the chip's clock, so its edges fall anywhere in a system
cycle, as they would from a real host. Frames come from `host.frames`, replies are parsed there too.
"""

from __future__ import annotations

from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, Timer, ValueChange

from ..host.frames import Reply, nop_frame, parse_reply, read_frame, write_frame
from .spi_shifter import CHUNK_BYTES

__all__ = ["SPIMaster", "ShifterMaster"]


class SPIMaster:
    """Bound to a DUT's SPI pins by prefix: `SPIMaster(dut, sck_period_ps)` drives `spi__sck` etc."""

    def __init__(self, dut, sck_period_ps: int, prefix: str = "spi__", cipo_settle_ps: int | None = None):
        """`cipo_settle_ps`, if given: how long after a rising SCK edge the target has moved CIPO to its
        next bit. When half an SCK period is longer, a frame runs on a simulator-driven SCK with one Python
        wake-up per bit (at each falling edge: CIPO already shows the next bit, COPI takes it) instead of
        two, with the same edges at the same times."""
        self._sck = getattr(dut, f"{prefix}sck")
        self.cipo_settle_ps = cipo_settle_ps
        self._clock = None
        self._cs_n = getattr(dut, f"{prefix}cs_n")
        self._copi = getattr(dut, f"{prefix}copi")
        self._cipo = getattr(dut, f"{prefix}cipo")
        self.sck_period_ps = sck_period_ps
        self.bytes_transferred = 0
        self._sck.value = 0
        self._cs_n.value = 1
        self._copi.value = 0

    @property
    def sck_period_ps(self) -> int:
        return self._low + self._high

    @sck_period_ps.setter
    def sck_period_ps(self, period: int):
        self._high = period // 2
        self._low = period - self._high
        self._clock = None                                       # a clocked frame makes a new one

    async def transfer(self, frame: bytes, bits: int | None = None) -> bytes:
        """Clock `bits` bits of `frame` (all by default), MSB first; return what CIPO carried."""
        bits = 8 * len(frame) if bits is None else bits
        if bits and self.cipo_settle_ps is not None and self._high == self._low > self.cipo_settle_ps:
            return await self._clocked_transfer(frame, bits)
        received = bytearray(len(frame))
        # Mode 0: COPI changes while SCK is low (first bit right after CS falls), both sides sample on
        # the rising edge. Two timer waits per bit keep the Python overhead per simulated bit low.
        self._copi.value = (frame[0] >> 7) & 1 if bits else 0
        self._cs_n.value = 0
        for index in range(bits):
            byte, bit = divmod(index, 8)
            await Timer(self._low, unit="ps")
            if int(self._cipo.value):
                received[byte] |= 1 << (7 - bit)
            self._sck.value = 1
            await Timer(self._high, unit="ps")
            self._sck.value = 0
            following = index + 1
            if following < bits:
                self._copi.value = (frame[following // 8] >> (7 - following % 8)) & 1
        await Timer(self._low, unit="ps")
        self._cs_n.value = 1
        await Timer(2 * self.sck_period_ps, unit="ps")         # CS high time between frames
        self.bytes_transferred += bits // 8
        return bytes(received)

    async def _clocked_transfer(self, frame: bytes, bits: int) -> bytes:
        """`transfer` with SCK toggled by the simulator (cocotb's GPI clock): CS falls with COPI's first
        bit, half a period later CIPO is sampled and SCK starts high; at each falling edge CIPO holds the
        bit the next rising edge samples and COPI takes the next bit; after the last, SCK stops low."""
        if self._clock is None:
            self._clock = Clock(self._sck, self.sck_period_ps, unit="ps", impl="gpi")
        received = bytearray(len(frame))
        self._copi.value = (frame[0] >> 7) & 1
        self._cs_n.value = 0
        await Timer(self._low, unit="ps")
        falling = FallingEdge(self._sck)
        self._clock.start(start_high=True)
        for index in range(bits):
            if int(self._cipo.value):                  # the bit this index's rising edge samples
                received[index // 8] |= 1 << (7 - index % 8)
            await falling
            following = index + 1
            if following < bits:
                self._copi.value = (frame[following // 8] >> (7 - following % 8)) & 1
        self._clock.stop()
        await Timer(self._low, unit="ps")
        self._cs_n.value = 1
        await Timer(2 * self.sck_period_ps, unit="ps")         # CS high time between frames
        self.bytes_transferred += bits // 8
        return bytes(received)

    async def frame(self, frame: bytes) -> Reply:
        return parse_reply(frame, await self.transfer(frame))

    async def read(self, address: int, length: int) -> bytes:
        return (await self.frame(read_frame(address, length))).data

    async def write(self, address: int, data: bytes) -> Reply:
        return await self.frame(write_frame(address, data))

    async def status(self) -> int:
        return (await self.frame(nop_frame())).status


class ShifterMaster:
    """Frames through the gateware SPI controller of `sim.cosim_chip.CosimChip` (`shifter__*` pins): one
    wake-up per `CHUNK_BYTES` bytes instead of two per bit. Same `transfer` as SPIMaster."""

    def __init__(self, dut, prefix: str = "shifter__"):
        self._chunk = getattr(dut, f"{prefix}chunk")
        self._bits = getattr(dut, f"{prefix}bits")
        self._last = getattr(dut, f"{prefix}last")
        self._start = getattr(dut, f"{prefix}start")
        self._received = getattr(dut, f"{prefix}received")
        self._done = ValueChange(getattr(dut, f"{prefix}done"))
        self._toggle = 0
        self.bytes_transferred = 0
        for pin in (self._chunk, self._bits, self._last, self._start):
            pin.value = 0

    async def transfer(self, frame: bytes) -> bytes:
        """Clock all of `frame` in one CS-low period, MSB first; return what CIPO carried."""
        if not frame:
            raise ValueError("a frame has at least one byte")
        received = bytearray()
        for offset in range(0, len(frame), CHUNK_BYTES):
            chunk = frame[offset:offset + CHUNK_BYTES]
            bits = 8 * len(chunk)
            # The first bit out is the chunk's most significant: its first byte at the top of the word.
            self._chunk.value = int.from_bytes(chunk, "big") << (8 * CHUNK_BYTES - bits)
            self._bits.value = bits
            self._last.value = offset + CHUNK_BYTES >= len(frame)
            self._toggle ^= 1
            self._start.value = self._toggle
            await self._done
            word = int(self._received.value) & ((1 << bits) - 1)
            received += word.to_bytes(len(chunk), "big")
        self.bytes_transferred += len(frame)
        return bytes(received)
