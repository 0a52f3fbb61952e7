"""The inference sequencer's priority encoder: the lowest set bit of the spike flags, as a tree."""

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator
from hypothesis import given, settings, strategies as st

from rram_cim.rtl.inference import lowest_set_bit


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300).flatmap(lambda width: st.tuples(st.just(width), st.lists(
    st.integers(1, (1 << width) - 1), min_size=1, max_size=8))))
def test_the_tree_finds_the_lowest_set_bit_at_any_width(case):
    width, values = case
    flags = Signal(width)
    found = Signal(max(1, (width - 1).bit_length()))
    m = Module()
    m.d.comb += found.eq(lowest_set_bit(flags))
    seen = []

    async def bench(ctx):
        for value in values:
            ctx.set(flags, value)
            seen.append(ctx.get(found))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(value & -value).bit_length() - 1 for value in values]
