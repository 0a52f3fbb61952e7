"""Row/column drivers in Amaranth's simulator: cycle-exact port sequences and every interlock."""

import pytest
from amaranth.sim import Simulator

from rram_cim.config import REFERENCE
from rram_cim.rtl.analog_port import Op
from rram_cim.rtl.cell_driver import CellDriver, read_limit_code

SENSE_LATENCY = 3


def run(requests, sense_code=77):
    """Send `requests` (dicts) through the driver; return (responses, per-cycle port trace)."""
    dut = CellDriver(REFERENCE, max_width=32)
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
