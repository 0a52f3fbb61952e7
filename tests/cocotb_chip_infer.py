"""cocotb tests of spiking inference on the whole chip, driven through SPI by the host's runner, the
Python macro's crossbar and neurons on the analog port through the bridge, scored spike for spike
against the golden model of `models.inference`.

Run by tests/test_cocotb_chip_infer.py on Icarus and Verilator.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.task import bridge

from rram_cim.host.inference import InferenceRunner
from rram_cim.host.registers import ChipError, RegisterClient
from rram_cim.models.inference import InferenceModel
from rram_cim.models.macro import NeuronCodes
from rram_cim.protocol import StatusBit, pack_route
from rram_cim.sim.analog_bridge import AnalogBridge
from rram_cim.sim.chip_bench import ChipBench, seed_from_env
from rram_cim.sim.cosim_transport import CocotbTransport
from rram_cim.sim.inference_harness import macro_with_weights, two_layer_routing

V_READ = 6
class InferenceBench(ChipBench):
    def __init__(self, dut):
        super().__init__(dut)
        self.seed = seed_from_env()
        #: RRAM_CIM_NEURON_NOISE=1 turns on the neurons' kT/C noise and comparator offsets.
        self.noise = os.environ.get("RRAM_CIM_NEURON_NOISE", "0") == "1"
        self.bridge = AnalogBridge(dut, macro_with_weights(self.config, self.seed, self.noise))
        self.regs = RegisterClient(CocotbTransport(self.spi), self.model.table)
        self.runner = InferenceRunner(self.regs, self.config)

    async def start(self):
        await self.reset()
        self.bridge.start()


@cocotb.test()
async def two_layer_network_across_two_cores_matches_the_golden_model(dut):
    tb = InferenceBench(dut)
    await tb.start()
    config = tb.config
    rng = np.random.default_rng(tb.seed)
    host_steps = [[(0, int(r)) for r in rng.choice(config.rows, 24, replace=False)] for _ in range(10)]
    codes = NeuronCodes(thresh_pos=7, thresh_neg=7, refractory=1)
    routing = two_layer_routing(config)
    await bridge(tb.runner.configure)(codes, V_READ, routing)
    run = await bridge(tb.runner.run)(host_steps)

    golden = InferenceModel(macro_with_weights(config, tb.seed, tb.noise), routing, codes, V_READ).run(host_steps)
    # With neuron noise on, the macro draws it in the same order as the golden model: still exact.
    assert run.events == golden.events, f"seed {tb.seed}, noise {tb.noise}"
    assert np.abs(golden.spikes[:, 1]).sum() > 0, "the second layer never spiked: the test would be vacuous"
    assert (run.steps, run.spikes, run.row_events, run.dropped) == (
        len(host_steps), int(np.abs(golden.spikes).sum()), golden.row_events, golden.dropped)
    assert await bridge(tb.regs.read)("error") == 0
    dut._log.info("%d steps, %d spikes (%d in layer 2), %d row events", run.steps, run.spikes,
                  int(np.abs(golden.spikes[:, 1]).sum()), run.row_events)


@cocotb.test()
async def a_route_reaches_its_row_on_every_core_it_names(dut):
    # A layer split over both cores takes each input on both: the host sends every input event to both,
    # and core 0's positive spikes come back as row events on cores 0 and 1 (one entry, copies=1).
    tb = InferenceBench(dut)
    await tb.start()
    config = tb.config
    rng = np.random.default_rng(tb.seed + 1)
    rows = [rng.choice(config.rows, 12, replace=False) for _ in range(8)]
    host_steps = [[(core, int(r)) for core in (0, 1) for r in step] for step in rows] + [[]]
    codes = NeuronCodes(thresh_pos=7, thresh_neg=7, refractory=1)
    entries = []
    for core in range(config.cores):
        for neuron in range(config.neurons):
            fanned = core == 0 and neuron < config.rows
            entries += [pack_route(True, fanned, 0, neuron, copies=1 if fanned else 0), pack_route(True)]
    routing = b"".join(entries)
    await bridge(tb.runner.configure)(codes, V_READ, routing)
    run = await bridge(tb.runner.run)(host_steps)

    golden = InferenceModel(macro_with_weights(config, tb.seed, tb.noise), routing, codes, V_READ).run(host_steps)
    assert run.events == golden.events, f"seed {tb.seed}"
    assert (run.steps, run.spikes, run.row_events, run.dropped) == (
        len(host_steps), int(np.abs(golden.spikes).sum()), golden.row_events, golden.dropped)
    # Each step delivers the routed events first, then the host's (all of them inside the chip).
    copies = [event for t, step in enumerate(golden.routed) for event in step[:len(step) - len(host_steps[t])]]
    assert {core for core, _ in copies} == {0, 1}, "no spike was fanned out: the test would be vacuous"
    assert await bridge(tb.regs.read)("error") == 0


@cocotb.test()
async def bad_starts_are_refused_and_the_engines_exclude_each_other(dut):
    tb = InferenceBench(dut)
    await tb.start()
    regs = tb.regs
    routing = two_layer_routing(tb.config)

    def scenario():
        ctrl = regs.table.register("ctrl")
        # A zero threshold: refused, nothing runs.
        tb.runner.configure(NeuronCodes(thresh_pos=0, thresh_neg=5), V_READ, routing)
        regs.write("neuron_timesteps", 3)
        try:
            regs.write("ctrl", ctrl.field("inf_start").mask)
            raise AssertionError("a start with a zero threshold was accepted")
        except ChipError as error:
            assert "infer_config" in str(error)
        # A read code above the disturb limit: refused too.
        tb.runner.configure(NeuronCodes(thresh_pos=5, thresh_neg=5), 40, routing)
        try:
            regs.write("ctrl", ctrl.field("inf_start").mask)
            raise AssertionError("a start above the read limit was accepted")
        except ChipError as error:
            assert "infer_config" in str(error)
        assert not regs.status() & StatusBit.BUSY
        # Inference waiting for host input holds the macro: a P&V start is refused meanwhile.
        tb.runner.configure(NeuronCodes(thresh_pos=5, thresh_neg=5), V_READ, routing)
        regs.write("ctrl", ctrl.field("inf_start").mask)
        assert regs.status() & StatusBit.BUSY
        try:
            regs.write("ctrl", ctrl.field("pv_start").mask)
            raise AssertionError("P&V started while inference ran")
        except ChipError as error:
            assert "pv_config" in str(error)
        # Its settings and its routing table belong to it while it runs: refused, nothing changes.
        for what, attempt in (("threshold write", lambda: regs.write("core1_thresh_pos", 9)),
                              ("routing read", lambda: regs.read_window("routing", 0, 4))):
            try:
                attempt()
                raise AssertionError(f"a {what} during inference was carried out")
            except ChipError as error:
                assert "engine_busy" in str(error), error
        assert regs.read("core1_thresh_pos") == 5
        # Stop while it waits for input: it ends without its tick.
        regs.write("ctrl", ctrl.field("inf_abort").mask)
        regs.idle(20e-6)
        status = regs.status()
        assert status & StatusBit.INFER_DONE and not status & StatusBit.BUSY
        return regs.read("neuron_step")

    assert await bridge(scenario)() == 0
    assert not tb.bridge.pulse_log


@cocotb.test()
async def reset_mid_inference_leaves_an_idle_chip(dut):
    tb = InferenceBench(dut)
    await tb.start()
    routing = two_layer_routing(tb.config)
    regs = tb.regs

    def start():
        tb.runner.configure(NeuronCodes(thresh_pos=5, thresh_neg=5), V_READ, routing)
        regs.write("neuron_timesteps", 50)
        regs.write("ctrl", regs.table.register("ctrl").field("inf_start").mask)
        for row in range(20):
            regs.write("fifo_spike_in", row)
        return regs.status()

    assert await bridge(start)() & StatusBit.BUSY
    await tb.pulse_reset()
    strobes = len(tb.bridge.neuron_log)
    await tb.cycles(2000)
    assert len(tb.bridge.neuron_log) == strobes, "the macro saw activity after reset"
    status = await tb.spi.status()
    assert not status & (StatusBit.BUSY | StatusBit.INFER_DONE | StatusBit.ERROR)
    assert await bridge(regs.read)("neuron_step") == 0 and await bridge(regs.read)("fifo_in_level") == 0


@cocotb.test()
async def directed_runs_match_the_golden_model(dut):
    """A single event with a refractory period, negative spikes to the host, routing to the same and to the
    other core, and events outside the chip (dropped, counted, flagged): one chip, run after run."""
    tb = InferenceBench(dut)
    await tb.start()
    config = tb.config
    to_host = b"".join(pack_route(True) for _ in range(config.cores * config.neurons * 2))
    # Every spike of core 1 goes back to row (neuron) of core 1 and to the host; core 0's to core 1.
    loops = b"".join(pack_route(True, True, 1, neuron) for _ in range(config.cores)
                     for neuron in range(config.neurons) for _ in (0, 1))
    scenarios = [
        ("single event, refractory", NeuronCodes(thresh_pos=1, thresh_neg=1, refractory=2), to_host,
         [[(0, 5)] for _ in range(8)]),
        ("negative spikes, ADC mode", NeuronCodes(thresh_pos=40, thresh_neg=3, mode=2), to_host,
         [[(1, r) for r in range(0, 40, 3)] for _ in range(6)]),
        ("routing to the same and the other core", NeuronCodes(thresh_pos=4, thresh_neg=4), loops,
         [[(0, r) for r in range(10)], [], [], [(1, 3)], []]),
        ("events outside the chip", NeuronCodes(thresh_pos=7, thresh_neg=7), to_host,
         [[(0, 1), (2, 3), (0, 70)], [(3, 0)]]),
    ]
    for name, codes, routing, host_steps in scenarios:
        await bridge(tb.runner.configure)(codes, V_READ, routing)
        run = await bridge(tb.runner.run)(host_steps)
        golden = InferenceModel(macro_with_weights(config, tb.seed), routing, codes, V_READ).run(host_steps)
        assert run.events == golden.events, f"{name} (seed {tb.seed})"
        assert (run.spikes, run.row_events, run.dropped) == (
            int(np.abs(golden.spikes).sum()), golden.row_events, golden.dropped), name
        assert run.warnings == (["route_drop"] if golden.dropped else []), f"{name}: {run.warnings}"
        assert await bridge(tb.regs.errors)() == []
        dut._log.info("%s: %d spikes (%d negative), %d dropped", name, run.spikes,
                      int((golden.spikes < 0).sum()), run.dropped)
        if name.startswith("negative"):
            assert (golden.spikes < 0).any()
        if name.startswith("events outside"):
            assert golden.dropped == 3
        if name.startswith("routing"):
            assert golden.spikes[3:, 1].any()                  # the loop on core 1 kept itself going
