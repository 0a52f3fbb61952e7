"""Row/column drivers in Amaranth's simulator: cycle-exact port sequences and every interlock."""

import pytest
from amaranth.sim import Simulator

from rram_cim.config import REFERENCE
from rram_cim.rtl.analog_port import Op
from rram_cim.rtl.cell_driver import CellDriver, read_limit_code

SENSE_LATENCY = 3


def run_wide(requests, sense_code=77):
    """`run` on a driver that accepts the widest pulses (255 cycles)."""
    return run(requests, sense_code, max_width=255)


def run(requests, sense_code=77, max_width=32):
    """Send `requests` (dicts) through the driver; return (responses, per-cycle port trace)."""
    dut = CellDriver(REFERENCE, max_width=max_width)
    responses, trace = [], []
    sim = Simulator(dut)
    sim.add_clock(1e-6 / 12)

    async def macro(ctx):
        # A stand-in for the analog macro: answers a sense request after SENSE_LATENCY cycles.
        waiting = 0
        async for clk_edge, rst, req in ctx.tick().sample(dut.port.sense_req):
            if req and waiting == 0:
                waiting = SENSE_LATENCY
            elif waiting:
                waiting -= 1
                ctx.set(dut.port.sense_valid, waiting == 0)
                ctx.set(dut.port.sense_code, sense_code)
            else:
                ctx.set(dut.port.sense_valid, 0)

    names = ("op", "row", "column", "wl_code", "bl_code", "sl_code", "pulse", "sense_req")

    async def monitor(ctx):
        # One entry per cycle: the port as the macro sees it at the clock edge.
        async for _, _, *values in ctx.tick().sample(*(getattr(dut.port, name) for name in names)):
            trace.append(dict(zip(names, values)))

    async def bench(ctx):
        for request in requests:
            for name, value in request.items():
                ctx.set(getattr(dut.request.payload, name), value)
            ctx.set(dut.request.valid, 1)
            await ctx.tick().until(dut.request.ready)
            ctx.set(dut.request.valid, 0)
            if not ctx.get(dut.response.valid):
                await ctx.tick().until(dut.response.valid)
            responses.append((ctx.get(dut.response.payload.code), ctx.get(dut.response.payload.refused)))
            ctx.set(dut.response.ready, 1)
            await ctx.tick()
            ctx.set(dut.response.ready, 0)
        await ctx.tick().repeat(4)

    sim.add_process(macro)
    sim.add_process(monitor)
    sim.add_testbench(bench)
    sim.run()
    return responses, trace


SET = dict(op=Op.SET, row=5, column=9, wl_code=120, bl_code=140, sl_code=99, width=6, setup=2)


def test_set_pulse_has_its_width_and_drives_only_gate_and_top_electrode():
    responses, trace = run([SET])
    assert responses == [(0, 0)]
    pulsed = [t for t in trace if t["pulse"]]
    assert len(pulsed) == 6
    assert all(t["op"] == Op.SET and (t["row"], t["column"]) == (5, 9) for t in pulsed)
    assert all((t["wl_code"], t["bl_code"], t["sl_code"]) == (120, 140, 0) for t in pulsed)


def test_setup_cycles_precede_the_pulse_with_dacs_at_zero():
    _, trace = run([SET])
    first = next(i for i, t in enumerate(trace) if t["pulse"])
    setup = trace[first - 2:first]
    assert all(t["op"] == Op.SET and t["bl_code"] == 0 and not t["pulse"] for t in setup)
    assert trace[first - 3]["op"] == Op.IDLE


def test_reset_drives_the_source_line_never_the_top_electrode():
    _, trace = run([dict(SET, op=Op.RESET)])
    pulsed = [t for t in trace if t["pulse"]]
    assert len(pulsed) == 6
    assert all((t["bl_code"], t["sl_code"]) == (0, 99) for t in pulsed)


def test_read_senses_and_returns_the_macro_code():
    limit = read_limit_code(REFERENCE)
    responses, trace = run([dict(op=Op.READ, row=1, column=2, wl_code=200, bl_code=limit, setup=3)], sense_code=91)
    assert responses == [(91, 0)]
    sensing = [t for t in trace if t["sense_req"]]
    assert sensing and all(t["bl_code"] == limit and not t["pulse"] for t in sensing)


@pytest.mark.parametrize("request_, why", [
    (dict(op=Op.READ, bl_code=read_limit_code(REFERENCE) + 1), "read above the disturb limit"),
    (dict(SET, width=0), "zero-width pulse"),
    (dict(SET, width=33), "pulse longer than max_width"),
    (dict(SET, op=Op.IDLE), "no operation"),
])
def test_interlocks_refuse_and_leave_the_port_idle(request_, why):
    responses, trace = run([request_, SET])
    assert responses[0] == (0, 1), why
    assert responses[1] == (0, 0)
    assert sum(t["pulse"] for t in trace) == SET["width"]       # only the valid request pulsed


def pulses_of(trace):
    """The pulses in a port trace, each as its list of per-cycle port entries."""
    pulses, current = [], []
    for entry in trace:
        if entry["pulse"]:
            current.append(entry)
        elif current:
            pulses.append(current)
            current = []
    return pulses


@pytest.mark.parametrize("op,driven", [(Op.SET, "bl_code"), (Op.RESET, "sl_code"), (Op.FORM, "bl_code")])
def test_triangular_pulses_step_through_the_reference_codes(op, driven):
    import numpy as np
    from rram_cim.models.device import Shape
    from rram_cim.models.pulses import pulse_codes
    rng = np.random.default_rng(7)
    cases = [(amplitude, width) for width in (1, 2, 3, 4, 7, 8, 31, 32) for amplitude in (0, 1, 5, 255)]
    cases += [(int(a), int(w)) for a, w in zip(rng.integers(0, 256, 12), rng.integers(1, 33, 12))]
    requests = [dict(op=op, row=1, column=2, wl_code=150, bl_code=amplitude, sl_code=amplitude, width=width,
                     setup=setup, triangular=1) for (amplitude, width), setup in zip(cases, [0, 1, 3] * 20)]
    responses, trace = run(requests)
    assert responses == [(0, 0)] * len(cases)
    pulses = pulses_of(trace)
    assert len(pulses) == len(cases)
    other = "sl_code" if driven == "bl_code" else "bl_code"
    for (amplitude, width), pulse in zip(cases, pulses):
        codes = [entry[driven] for entry in pulse]
        assert codes == pulse_codes(amplitude, width, Shape.TRIANGULAR).tolist(), (amplitude, width)
        assert all(entry[other] == 0 and entry["wl_code"] == 150 for entry in pulse)


def test_triangular_ramp_is_exact_at_the_widest_pulse():
    import numpy as np
    from rram_cim.models.device import Shape
    from rram_cim.models.pulses import pulse_codes
    dut_width = 255
    requests = [dict(op=Op.SET, row=0, column=0, wl_code=90, bl_code=a, width=w, setup=1, triangular=1)
                for a, w in ((255, dut_width), (133, 254), (17, 129))]
    responses, trace = run_wide(requests)
    for request, pulse in zip(requests, pulses_of(trace)):
        expected = pulse_codes(request["bl_code"], request["width"], Shape.TRIANGULAR)
        assert np.array_equal([entry["bl_code"] for entry in pulse], expected)
