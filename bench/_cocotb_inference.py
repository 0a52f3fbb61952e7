"""cocotb test behind bench/inference.py: inferences of the two-layer network through SPI, timed.

Environment: RRAM_CIM_BENCH_OUT (JSON file to write), RRAM_CIM_BENCH_INFERENCES, RRAM_CIM_BENCH_STEPS,
RRAM_CIM_BENCH_EVENTS (input events per step), RRAM_CIM_SEED (the macro's devices and weights).
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np
from cocotb.task import bridge
from cocotb.utils import get_sim_time

from inference import V_READ
from rram_cim.host.inference import InferenceRunner
from rram_cim.host.registers import RegisterClient
from rram_cim.models.macro import NeuronCodes
from rram_cim.sim.analog_bridge import AnalogBridge
from rram_cim.sim.chip_bench import ChipBench, seed_from_env
from rram_cim.sim.cosim_transport import CocotbTransport
from rram_cim.sim.inference_harness import macro_with_weights, two_layer_routing


@cocotb.test()
async def timed_inferences(dut):
    tb = ChipBench(dut)
    config = tb.config
    seed = seed_from_env()
    macro_bridge = AnalogBridge(dut, macro_with_weights(config, seed))
    runner = InferenceRunner(RegisterClient(CocotbTransport(tb.shifter), tb.model.table), config)
    await tb.reset()
    macro_bridge.start()
    inferences = int(os.environ.get("RRAM_CIM_BENCH_INFERENCES", "5"))
    steps = int(os.environ.get("RRAM_CIM_BENCH_STEPS", "10"))
    events = int(os.environ.get("RRAM_CIM_BENCH_EVENTS", "24"))
    rng = np.random.default_rng(1)
    await bridge(runner.configure)(NeuronCodes(thresh_pos=7, thresh_neg=7, refractory=1), V_READ,
                                      two_layer_routing(config))
    wall, sim, spikes = [], [], 0
    for _ in range(inferences):
        host_steps = [[(0, int(r)) for r in rng.choice(config.rows, events, replace=False)] for _ in range(steps)]
        started, sim_started = time.perf_counter(), get_sim_time("ps")
        run = await bridge(runner.run)(host_steps)
        wall.append(time.perf_counter() - started)
        sim.append((get_sim_time("ps") - sim_started) * 1e-12)
        spikes += run.spikes
    with open(os.environ["RRAM_CIM_BENCH_OUT"], "w") as out:
        json.dump({"inferences": inferences, "steps": steps, "events": events, "wall_seconds": wall,
                   "sim_seconds": sim, "spikes": spikes}, out)
