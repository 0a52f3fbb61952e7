"""cocotb test behind bench/spi_throughput.py: burst writes and reads through SPI, timed.

Writes its figures as JSON to the file named by RRAM_CIM_BENCH_OUT.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
from cocotb.utils import get_sim_time

from rram_cim.host.frames import read_frame, write_frame
from rram_cim.sim.chip_bench import ChipBench

BURST = 256


@cocotb.test()
async def spi_burst_throughput(dut):
    total = int(os.environ.get("RRAM_CIM_BENCH_BYTES", "8192"))
    divider = float(os.environ.get("RRAM_CIM_BENCH_DIVIDER", "4"))
    tb = ChipBench(dut)
    await tb.reset()
    tb.spi.sck_period_ps = tb.sck_period_ps(divider)
    window = tb.model.table.window("pv_target")
    payload = bytes((7 * i) & 0xFF for i in range(total))
    sim_start, wall_start = get_sim_time("ps"), time.perf_counter()
    sent = 0
    for offset in range(0, total, BURST):
        chunk = payload[offset:offset + BURST]
        await tb.checked_frame(write_frame(window.address + offset % window.size, chunk))
        sent += len(chunk)
    for offset in range(0, total, BURST):
        length = min(BURST, total - offset)
        await tb.checked_frame(read_frame(window.address + offset % window.size, length))
        sent += length
    sim_seconds = (get_sim_time("ps") - sim_start) * 1e-12
    wall_seconds = time.perf_counter() - wall_start
    figures = {"payload_bytes": sent, "divider": divider, "sim_seconds": sim_seconds,
               "wall_seconds": wall_seconds, "cycles": sim_seconds * tb.config.sys_clk_hz}
    with open(os.environ["RRAM_CIM_BENCH_OUT"], "w") as out:
        json.dump(figures, out)
