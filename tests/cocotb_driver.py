"""cocotb test of the row/column drivers with the Python analog macro attached through the bridge.

Run by tests/test_cocotb_driver.py on Icarus and Verilator: random pulses and senses on random cells,
some of them refused by the interlocks. Every pulse the bridge sees must be exactly the one requested
(cell, codes, width), every sensed code and every cell's final conductance must equal what the same
`AnalogMacro` predicts when driven directly.
"""

from __future__ import annotations

import os
import random

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from rram_cim.models.macro import AnalogMacro
from rram_cim.protocol import Op
from rram_cim.rtl.cell_driver import CellDriver, read_limit_code
from rram_cim.sim.analog_bridge import AnalogBridge
from rram_cim.sim.chip_bench import config_from_env, seed_from_env
from rram_cim.sim.clock import start_clock
from rram_cim.sim.streams import StreamSink, StreamSource

REQUESTS = int(os.environ.get("RRAM_CIM_DRIVER_REQUESTS", "300"))


def random_request(rng: random.Random, config, limit: int) -> dict:
    top = (1 << config.dac_bits) - 1
    op = rng.choice([Op.SET, Op.SET, Op.RESET, Op.READ, Op.READ])
    request = dict(op=op, core=rng.randrange(config.cores), row=rng.randrange(config.rows),
                   column=rng.randrange(config.columns), wl_code=rng.randrange(60, 170),
                   bl_code=rng.randrange(60, 170) if op == Op.SET else rng.randrange(0, limit + 1),
                   sl_code=rng.randrange(60, 130), width=rng.randrange(1, 17), setup=rng.randrange(0, 4))
    if rng.random() < 0.08:            # something the interlocks must refuse
        request |= rng.choice([dict(op=Op.READ, bl_code=rng.randrange(limit + 1, top + 1)),
                               dict(op=Op.SET, width=0), dict(op=Op.IDLE)])
    return request


@cocotb.test()
async def driver_pulses_and_senses_match_the_macro_model(dut):
    config = config_from_env()
    seed = seed_from_env()
    rng = random.Random(seed)
    # Every input is driven before reset ends, so no X reaches the design.
    bridge = AnalogBridge(dut, AnalogMacro(config, seed))
    reference = AnalogMacro(config, seed)
    driver = CellDriver(config)
    source = StreamSource(dut, "request__", driver.request_layout)
    sink = StreamSink(dut, "response__", driver.response_layout)
    start_clock(dut, config)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    bridge.start()
    limit = read_limit_code(config)

    refused = 0
    for index in range(REQUESTS):
        request = random_request(rng, config, limit)
        pulses_before = len(bridge.pulse_log)
        await source.send(**request)
        response = await sink.receive()
        context = f"request {index} {request} (RRAM_CIM_SEED={seed})"
        op = request["op"]
        must_refuse = (op == Op.IDLE or (op == Op.READ and request["bl_code"] > limit)
                       or (op != Op.READ and request["width"] == 0))
        assert response["refused"] == must_refuse, context
        if must_refuse:
            refused += 1
            assert len(bridge.pulse_log) == pulses_before, f"refused but pulsed: {context}"
            continue
        where = (request["core"], request["row"], request["column"])
        if op == Op.READ:
            assert response["code"] == reference.sense(*where, request["bl_code"]), context
            continue
        width = request["width"]
        expected = (op, *where, [request["wl_code"]] * width,
                    [request["bl_code"] if op == Op.SET else 0] * width,
                    [request["sl_code"] if op == Op.RESET else 0] * width)
        await ClockCycles(dut.clk, 2)             # let the bridge see the strobe fall
        assert bridge.pulse_log[-1] == expected, f"{context}: bridge saw {bridge.pulse_log[-1]}"
        reference.pulse(*expected)

    for core, (ours, theirs) in enumerate(zip(bridge.macro.cores, reference.cores)):
        assert np.array_equal(ours.g_us, theirs.g_us), f"core {core} conductances differ (seed {seed})"
    dut._log.info("%d requests, %d refused, %d pulses, %d senses", REQUESTS, refused,
                  len(bridge.pulse_log), len(bridge.sense_log))
    assert refused > 0 and len(bridge.pulse_log) > 0 and len(bridge.sense_log) > 0
