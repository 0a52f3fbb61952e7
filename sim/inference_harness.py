"""The inference sequencer alone in Amaranth's simulator, with the Python macro's neurons answering its
port: the fast loop for tests/test_inference.py and the cycle counts of bench/inference.py."""

from __future__ import annotations

import dataclasses

import numpy as np
from amaranth.sim import Simulator

from ..config import ChipConfig
from ..models.macro import AnalogMacro, NeuronCodes, codes_per_core
from ..protocol import EVENT_TICK, Op, input_event, pack_neuron_cores, pack_route
from ..rtl.inference import InferenceSequencer
from .amaranth_responder import port_responder_process
from .port_responder import PortResponder

__all__ = ["run_sequencer", "macro_with_weights", "two_layer_routing", "LEVELS_US"]

#: Conductance levels of the test networks, uS: a programmed array's spread of weights.
LEVELS_US = (2.0, 20.0, 60.0, 110.0)


def macro_with_weights(config: ChipConfig, seed: int, neuron_noise: bool = False,
                       rng: np.random.Generator | None = None) -> AnalogMacro:
    """A macro whose conductances sit at random levels, as a programmed array would hold them (drawn
    from `rng`, or from a generator seeded with `seed`)."""
    macro = AnalogMacro(config, seed, neuron_noise=neuron_noise)
    rng = np.random.default_rng(seed) if rng is None else rng
    for array in macro.cores:
        array.g_us[:] = rng.choice(LEVELS_US, size=array.shape)
    return macro


def two_layer_routing(config: ChipConfig, layer1_to_host: bool = True) -> bytes:
    """Core 0's neuron n: + spikes to row n of core 1, - spikes to row NEURONS + n (a second layer that
    sees signed inputs on separate rows), and, with `layer1_to_host`, to the host; core 1's spikes to
    the host."""
    entries = []
    for core in range(config.cores):
        for neuron in range(config.neurons):
            for negative in (False, True):
                if core == 0:
                    entries.append(pack_route(layer1_to_host, True, 1,
                                              neuron + (config.neurons if negative else 0)))
                else:
                    entries.append(pack_route(True))
    return b"".join(entries)

#: Cycles the macro takes to acknowledge a neuron strobe (as the cocotb bridge's default).
ACK_LATENCY = 2


def run_sequencer(macro, routing: bytes, codes, host_steps, v_read: int, steps=None, out_stall=0,
                  stop_at_cycle=None, runs=1):
    """Run the sequencer (`runs` times back to back, the same input each time); return (output events,
    counters of the last run, row strobes per step). The counters include `cycles`, from start to done."""
    dut = InferenceSequencer(macro.config)
    port = dut.port
    words = [w for step in host_steps for w in ([input_event(c, r) for c, r in step] + [EVENT_TICK])] * runs
    out, result = [], {}
    responder = PortResponder(macro, neuron_latency=ACK_LATENCY)

    async def memories(ctx):
        async for _, _, addr in ctx.tick().sample(dut.route.addr):
            ctx.set(dut.route.data, routing[addr] if addr < len(routing) else 0)

    async def host(ctx):
        for word in words:
            ctx.set(dut.host_in.payload, word)
            ctx.set(dut.host_in.valid, 1)
            await ctx.tick().until(dut.host_in.ready)
        ctx.set(dut.host_in.valid, 0)

    async def bench(ctx):
        for name, value in dict(v_read=v_read, timesteps=steps or len(host_steps)).items():
            ctx.set(getattr(dut.settings, name), value)
        pages = codes_per_core(codes, macro.config.cores)[:macro.config.neuron_pages]
        ctx.set(dut.cores.as_value(), pack_neuron_cores([dataclasses.asdict(page) for page in pages]))
        for _ in range(runs):
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles = 0
            while not ctx.get(dut.done):
                ready = out_stall == 0 or cycles % (out_stall + 1) == 0
                ctx.set(dut.host_out.ready, ready)
                if ready and ctx.get(dut.host_out.valid):          # a transfer at this clock edge
                    out.append(ctx.get(dut.host_out.payload))
                await ctx.tick()
                cycles += 1
                if stop_at_cycle is not None and cycles == stop_at_cycle:
                    ctx.set(dut.stop, 1)
                assert cycles < 200_000, "sequencer hung"
        result.update(step=ctx.get(dut.step), row_events=ctx.get(dut.row_events), spikes=ctx.get(dut.spikes),
                      dropped=ctx.get(dut.dropped), busy=ctx.get(dut.busy), cycles=cycles)

    sim = Simulator(dut)
    sim.add_clock(1 / macro.config.sys_clk_hz)
    # The sequencer alone leaves the port's operation to the chip's top, which reads INFER while it runs.
    sim.add_process(port_responder_process(responder, port, op=Op.INFER))
    sim.add_process(memories)
    sim.add_process(host)
    sim.add_testbench(bench)
    sim.run()
    return out, result, _row_events_by_step(responder.neuron_log)


def _row_events_by_step(neuron_log) -> list[list[tuple[int, int]]]:
    """The (core, row) of each row strobe, one list per time step (a step ends at its integrate)."""
    steps = [[]]
    for action, detail in neuron_log:
        if action == "row":
            steps[-1].append(detail)
        elif action == "integrate":
            steps.append([])
    return steps
