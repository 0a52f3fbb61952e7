"""The simulation side of `sim.cosim_link.CosimTransport`: the chip out of reset, the analog macro on its
port (or, with RRAM_CIM_TOP=fpga_uart, the FPGA build behind its UART), then one request at a time from the host process over the socket named by RRAM_CIM_SOCKET, until
it says quit. RRAM_CIM_SEED draws the macro's devices; RRAM_CIM_NEURON_NOISE=1 turns the neuron noise on.

Waiting for the host blocks the simulator, so simulated time only passes inside a frame or an idle.
"""

from __future__ import annotations

import os
import socket

import cocotb
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time

from ..models.macro import AnalogMacro
from .analog_bridge import AnalogBridge
from .chip_bench import ChipBench, config_from_env
from .clock import PS_PER_SECOND, start_clock
from .cosim_transport import wait_seconds
from .cosim_link import EXCHANGE, FAILED, FLOAT, IDLE, OK, QUIT, RELAX, TIME, receive_message, send_message


class _ChipSide:
    """The chip (`rtl.chip.Chip`) with the Python analog macro on its port, frames through its SPI pins."""

    async def start(self, dut):
        self.tb = ChipBench(dut)
        seed = int(os.environ.get("RRAM_CIM_SEED", "0"))
        self.macro = AnalogMacro(self.tb.config, seed,
                                 neuron_noise=os.environ.get("RRAM_CIM_NEURON_NOISE", "0") == "1")
        bridge = AnalogBridge(dut, self.macro)
        await self.tb.reset()
        bridge.start()

    async def exchange(self, frame: bytes) -> bytes:
        return await self.tb.shifter.transfer(frame)

    def relax(self, seconds: float) -> None:
        for array in self.macro.cores:
            array.relax(seconds)


class _BoardSide:
    """The FPGA build (`fpga_uart`: chip, emulated macro, UART bridge), frames through its UART pins."""

    async def start(self, dut):
        from ..host.serial_link import frame_bytes
        from ..fpga.top import UART_BAUD
        from .cocotb_uart import UartStream
        config = config_from_env()
        period = start_clock(dut, config)
        self.uart = UartStream(dut.rx, dut.tx, UART_BAUD)
        self.frame_bytes = frame_bytes
        dut.rst.value = 1
        await Timer(4 * period, unit="ps")
        dut.rst.value = 0
        self.uart.start()
        await Timer((config.cells_total + 16) * period, unit="ps")     # the macro clears its cells

    async def exchange(self, frame: bytes) -> bytes:
        await self.uart._send(self.frame_bytes(frame))
        reply = await self.uart._read(len(frame))
        if len(reply) != len(frame):
            raise RuntimeError(f"the bridge answered {len(reply)} of {len(frame)} bytes")
        return reply

    def relax(self, seconds: float) -> None:
        raise ValueError("the emulated cells do not relax")


@cocotb.test()
async def serve(dut):
    side = _BoardSide() if os.environ.get("RRAM_CIM_TOP") == "fpga_uart" else _ChipSide()
    await side.start(dut)
    started = get_sim_time("ps")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(os.environ["RRAM_CIM_SOCKET"])
        while True:
            try:
                kind, payload = receive_message(sock)
            except Exception:              # the host went away: end the simulation
                return
            try:
                if kind == EXCHANGE:
                    reply = await side.exchange(payload)
                elif kind == IDLE:
                    await wait_seconds(FLOAT.unpack(payload)[0])
                    reply = b""
                elif kind == RELAX:
                    side.relax(FLOAT.unpack(payload)[0])
                    reply = b""
                elif kind == TIME:
                    reply = FLOAT.pack((get_sim_time("ps") - started) / PS_PER_SECOND)
                elif kind == QUIT:
                    send_message(sock, OK)
                    return
                else:
                    raise ValueError(f"unknown request {kind!r}")
            except Exception as error:        # the host raises it as CosimError; the simulation goes on
                send_message(sock, FAILED, f"{type(error).__name__}: {error}".encode())
                continue
            send_message(sock, OK, reply)
