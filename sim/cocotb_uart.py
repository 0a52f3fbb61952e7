"""A UART on the board top's pins for cocotb, as a byte stream the host's `SerialTransport` can use.

Full duplex, as the USB bridge is: a monitor task decodes every byte the FPGA sends (the bridge answers
each byte while the next arrives), `write` sends bytes bit by bit, `read(n)` waits for them in
simulated time. `write`, `read` and `idle` block like a serial port, from a cocotb bridge thread.
"""

from __future__ import annotations

from collections import deque

import cocotb
from cocotb.task import resume
from cocotb.triggers import FallingEdge, Timer

from .clock import PS_PER_SECOND
from .cosim_transport import wait_seconds

__all__ = ["UartStream"]



class UartStream:
    def __init__(self, rx_pin, tx_pin, baud: int, read_timeout_s: float = 0.05):
        """`rx_pin`: the FPGA's receive pin (driven here); `tx_pin`: its transmit pin (decoded here)."""
        self.rx, self.tx = rx_pin, tx_pin
        self.bit_ps = round(PS_PER_SECOND / baud)
        self.received: deque[int] = deque()
        self.read_timeout_ps = round(read_timeout_s * PS_PER_SECOND)
        self.name = "cocotb UART"
        self.rx.value = 1
        self.framing_errors = 0

    def start(self):
        return cocotb.start_soon(self._monitor())

    async def _monitor(self):
        while True:
            await FallingEdge(self.tx)
            await Timer(self.bit_ps * 3 // 2, unit="ps")           # the middle of data bit 0
            byte = 0
            for bit in range(8):
                byte |= (str(self.tx.value) == "1") << bit
                await Timer(self.bit_ps, unit="ps")
            if int(self.tx.value) != 1:
                self.framing_errors += 1
            self.received.append(byte)

    async def _send(self, data: bytes):
        for byte in data:
            for level in [0, *((byte >> bit) & 1 for bit in range(8)), 1]:
                self.rx.value = level
                await Timer(self.bit_ps, unit="ps")

    async def _read(self, count: int) -> bytes:
        waited, step = 0, self.bit_ps * 10
        while len(self.received) < count and waited < self.read_timeout_ps:
            await Timer(step, unit="ps")
            waited += step
        return bytes(self.received.popleft() for _ in range(min(count, len(self.received))))

    # ---- what SerialTransport calls, from a bridge thread --------------------------------------------------
    def write(self, data: bytes) -> None:
        resume(self._send)(bytes(data))

    def read(self, count: int) -> bytes:
        return resume(self._read)(count)

    def idle(self, seconds: float) -> None:
        resume(wait_seconds)(seconds)
