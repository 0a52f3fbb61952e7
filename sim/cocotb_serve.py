"""The simulation side of `sim.cosim_link.CosimTransport`: the chip out of reset, the analog macro on its
port, then one request at a time from the host process over the socket named by RRAM_CIM_SOCKET, until
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
from .chip_bench import PS_PER_SECOND, ChipBench
from .cosim_link import EXCHANGE, FAILED, FLOAT, IDLE, OK, QUIT, RELAX, TIME, receive_message, send_message


@cocotb.test()
async def serve(dut):
    tb = ChipBench(dut)
    seed = int(os.environ.get("RRAM_CIM_SEED", "0"))
    macro = AnalogMacro(tb.config, seed, neuron_noise=os.environ.get("RRAM_CIM_NEURON_NOISE", "0") == "1")
    bridge = AnalogBridge(dut, macro)
    await tb.reset()
    bridge.start()
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
                    reply = bytes(await tb.spi.transfer(payload))
                elif kind == IDLE:
                    await Timer(max(1, round(FLOAT.unpack(payload)[0] * PS_PER_SECOND)), unit="ps")
                    reply = b""
                elif kind == RELAX:
                    for array in macro.cores:
                        array.relax(FLOAT.unpack(payload)[0])
                    reply = b""
                elif kind == TIME:
                    reply = FLOAT.pack((get_sim_time("ps") - started) / PS_PER_SECOND)
                elif kind == QUIT:
                    send_message(sock, OK)
                    return
                else:
                    raise ValueError(f"unknown request {kind!r}")
            except Exception as error:
                send_message(sock, FAILED, f"{type(error).__name__}: {error}".encode())
                raise
            send_message(sock, OK, reply)
