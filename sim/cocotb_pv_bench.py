"""cocotb test behind bench/pv_cosim.py: program a whole core through SPI in co-simulation, timed.

Environment: RRAM_CIM_BENCH_OUT (JSON file to write), RRAM_CIM_BENCH_ALGORITHM (ispva|igvva),
RRAM_CIM_BENCH_SEED.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles
from cocotb.utils import get_sim_time

from ..protocol import StatusBit
from .cocotb_chip_pv import ProgrammingBench

LEVELS = (20, 50, 80, 110, 140, 170, 200, 230)       # ADC codes: 10 ... 115 uS at 0.5 uS per code
BUDGET = 60
RECIPES = {
    # ISPVA: the gate fixed above the top level's compliance, the top electrode ramped from below V_set.
    "ispva": dict(algorithm=0, cumulative=0, reset_on_overshoot=1, scope=2, bl_start=70, bl_step=1,
                  bl_stop=200, wl_start=165, wl_step=0, wl_stop=165, sl_reset=110, pulse_width=4,
                  setup_cycles=1, max_pulses=BUDGET, window=2),
    # IGVVA: the top electrode fixed well above V_set, the gate ramped through the compliance range.
    "igvva": dict(algorithm=1, cumulative=0, reset_on_overshoot=1, scope=2, bl_start=133, bl_step=0,
                  bl_stop=133, wl_start=90, wl_step=2, wl_stop=170, sl_reset=110, pulse_width=4,
                  setup_cycles=1, max_pulses=BUDGET, window=2),
}
BURST = 256


@cocotb.test()
async def program_a_core(dut):
    algorithm = os.environ.get("RRAM_CIM_BENCH_ALGORITHM", "igvva")
    tb = ProgrammingBench(dut)
    await tb.reset()
    tb.bridge.start()
    config = tb.config
    targets = np.random.default_rng(int(os.environ.get("RRAM_CIM_BENCH_SEED", "1"))).choice(
        LEVELS, size=(config.rows, config.columns))
    window = tb.table.window("pv_target")
    flat = bytes(int(t) for t in targets.reshape(-1))
    for offset in range(0, len(flat), BURST):
        await tb.spi.write(window.address + offset, flat[offset:offset + BURST])
    await tb.configure(RECIPES[algorithm])

    wall, sim = time.perf_counter(), get_sim_time("ps")
    await tb.write("ctrl", 1)
    while True:
        await ClockCycles(dut.clk, 20_000)
        status = await tb.spi.status()
        if status & StatusBit.PV_DONE and not status & StatusBit.BUSY:
            break
    sim_seconds = (get_sim_time("ps") - sim) * 1e-12
    wall_seconds = time.perf_counter() - wall

    pulses = bytearray()
    counts = tb.table.window("pv_pulses")
    for offset in range(0, config.cells_per_core, BURST):
        pulses += await tb.spi.read(counts.address + offset, BURST)
    g = tb.bridge.macro.cores[0].g_us
    result = {
        "algorithm": algorithm, "cells": config.cells_per_core, "budget": BUDGET,
        "pulses": list(pulses), "cells_done": await tb.read("pv_cells_done"),
        "cells_failed": await tb.read("pv_cells_failed"), "pulses_total": await tb.read("pv_pulses_total"),
        "sigma_us": [float(g[targets == level].std()) for level in LEVELS],
        "levels_us": [level * config.us_per_adc_lsb for level in LEVELS],
        "sim_seconds": sim_seconds, "wall_seconds": wall_seconds,
    }
    with open(os.environ["RRAM_CIM_BENCH_OUT"], "w") as out:
        json.dump(result, out)
