"""cocotb test behind bench/pv_cosim.py: program a whole core through SPI in co-simulation, timed.

The host side is the real one: `host.Programmer` over the co-simulation transport, as a user's script
would drive a board. Environment: RRAM_CIM_BENCH_OUT (JSON file to write), RRAM_CIM_BENCH_ALGORITHM
(a key of pv_cosim.RECIPES), RRAM_CIM_BENCH_SEED (targets), RRAM_CIM_SEED (the macro's devices).
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.task import bridge
from cocotb.utils import get_sim_time

from pv_cosim import BUDGET, recipes_for
from rram_cim.host.programming import Programmer
from rram_cim.host.registers import RegisterClient
from rram_cim.models.macro import AnalogMacro
from rram_cim.models.recipes import LEVELS
from rram_cim.sim.analog_bridge import AnalogBridge
from rram_cim.sim.chip_bench import ChipBench, seed_from_env
from rram_cim.sim.cosim_transport import CocotbTransport

#: Cycles between status polls while the engine runs.
POLL_CYCLES = 20_000


@cocotb.test()
async def program_a_core(dut):
    name = os.environ.get("RRAM_CIM_BENCH_ALGORITHM", "igvva")
    tb = ChipBench(dut)
    config = tb.config
    seed = seed_from_env()
    macro_bridge = AnalogBridge(dut, AnalogMacro(config, seed))
    await tb.reset()
    macro_bridge.start()
    targets = np.random.default_rng(int(os.environ.get("RRAM_CIM_BENCH_SEED", "1"))).choice(
        LEVELS, size=(config.rows, config.columns))
    reported = [-1]

    def progress(done: int, total: int):
        tenth = 10 * done // total
        if tenth > reported[0]:
            reported[0] = tenth
            dut._log.info("%s: %d of %d cells programmed", name, done, total)

    regs = RegisterClient(CocotbTransport(tb.shifter), tb.model.table)
    programmer = Programmer(regs, config, poll_seconds=POLL_CYCLES / config.sys_clk_hz, progress=progress)
    wall, sim = time.perf_counter(), get_sim_time("ps")
    cell_pulses = os.environ.get("RRAM_CIM_BENCH_CELL_PULSES", "1") == "1"
    result = await bridge(programmer.program)(0, targets, recipes_for(name, config), read_back=False,
                                                   cell_pulses=cell_pulses)
    sim_seconds = (get_sim_time("ps") - sim) * 1e-12
    wall_seconds = time.perf_counter() - wall

    g = macro_bridge.macro.cores[0].g_us
    record = {
        "algorithm": name, "cells": config.cells_per_core, "budget": BUDGET,
        "pulses": result.pulses.reshape(-1).tolist() if cell_pulses else None, "cells_done": result.cells_done,
        "frames": regs.frames, "bytes_sent": regs.bytes_sent, "bytes_clocked": regs.bytes_clocked,
        "sent_to": regs.sent_to(),
        "target_bits": result.target_bits, "cycles": round(sim_seconds * config.sys_clk_hz),
        "cells_failed": result.cells_failed, "pulses_total": result.pulses_total,
        "sigma_us": [float(g[targets == level].std()) for level in LEVELS],
        "levels_us": [level * config.us_per_adc_lsb for level in LEVELS],
        "sim_seconds": sim_seconds, "wall_seconds": wall_seconds,
    }
    with open(os.environ["RRAM_CIM_BENCH_OUT"], "w") as out:
        json.dump(record, out)
