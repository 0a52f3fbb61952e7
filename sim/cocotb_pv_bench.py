"""cocotb test behind bench/pv_cosim.py: program a whole core through SPI in co-simulation, timed.

The host side is the real one: `host.Programmer` over the co-simulation transport, as a user's script
would drive a board. Environment: RRAM_CIM_BENCH_OUT (JSON file to write), RRAM_CIM_BENCH_ALGORITHM
(a RECIPES key), RRAM_CIM_BENCH_SEED (targets).
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.task import bridge
from cocotb.utils import get_sim_time

from ..host.programming import Programmer
from ..host.registers import RegisterClient
from ..models.pv import igvva_level_recipes
from ..models.recipes import LEVELS, reference_recipe
from .cocotb_chip_pv import ProgrammingBench
from .cosim_transport import CocotbTransport

BUDGET = 60
_IGVVA = dict(algorithm=1, cumulative=0, reset_on_overshoot=1, bl_start=133, bl_step=0, bl_stop=133,
              wl_start=90, wl_step=2, wl_stop=170, sl_reset=110, pulse_width=4, max_pulses=BUDGET, window=2)
RECIPES = {
    # ISPVA: the gate fixed above the top level's compliance, the top electrode ramped from below V_set.
    "ispva": dict(_IGVVA, algorithm=0, bl_start=70, bl_step=1, bl_stop=200, wl_start=165, wl_step=0, wl_stop=165),
    # IGVVA: the top electrode fixed well above V_set, the gate ramped through the whole compliance range.
    "igvva": _IGVVA,
    # IGVVA with a recipe per level (the level table): each gate ramp starts just below its level.
    "igvva_levels": _IGVVA,
}
#: Cycles between status polls while the engine runs.
POLL_CYCLES = 20_000


def recipes_for(name: str, config):
    base = reference_recipe(RECIPES[name], config)
    return igvva_level_recipes(LEVELS, base, config) if name == "igvva_levels" else base


@cocotb.test()
async def program_a_core(dut):
    name = os.environ.get("RRAM_CIM_BENCH_ALGORITHM", "igvva")
    tb = ProgrammingBench(dut)
    await tb.reset()
    tb.bridge.start()
    config = tb.config
    targets = np.random.default_rng(int(os.environ.get("RRAM_CIM_BENCH_SEED", "1"))).choice(
        LEVELS, size=(config.rows, config.columns))
    reported = [-1]

    def progress(done: int, total: int):
        tenth = 10 * done // total
        if tenth > reported[0]:
            reported[0] = tenth
            dut._log.info("%s: %d of %d cells programmed", name, done, total)

    programmer = Programmer(RegisterClient(CocotbTransport(tb.spi), tb.table), config,
                            poll_seconds=POLL_CYCLES / config.sys_clk_hz, progress=progress)
    wall, sim = time.perf_counter(), get_sim_time("ps")
    result = await bridge(programmer.program)(0, targets, recipes_for(name, config), read_back=False)
    sim_seconds = (get_sim_time("ps") - sim) * 1e-12
    wall_seconds = time.perf_counter() - wall

    g = tb.bridge.macro.cores[0].g_us
    record = {
        "algorithm": name, "cells": config.cells_per_core, "budget": BUDGET,
        "pulses": result.pulses.reshape(-1).tolist(), "cells_done": result.cells_done,
        "cells_failed": result.cells_failed, "pulses_total": result.pulses_total,
        "sigma_us": [float(g[targets == level].std()) for level in LEVELS],
        "levels_us": [level * config.us_per_adc_lsb for level in LEVELS],
        "sim_seconds": sim_seconds, "wall_seconds": wall_seconds,
    }
    with open(os.environ["RRAM_CIM_BENCH_OUT"], "w") as out:
        json.dump(record, out)
