"""The two P&V slots' owners, alone in Amaranth's simulator: commits, releases, refusals and a run's end;
and the packed-target wire format the host and the engine share."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from rram_cim.protocol import pack_targets, target_bits_for, unpack_targets
from rram_cim.rtl.pv_slots import PVSlots


def test_slots_alternate_refuse_a_third_commit_and_clear_at_a_runs_end():
    dut = PVSlots()
    seen = []

    async def bench(ctx):
        async def pulse(name):
            ctx.set(getattr(dut, name), 1)
            refused = ctx.get(dut.commit_refused)
            await ctx.tick()
            ctx.set(getattr(dut, name), 0)
            return refused

        def state():
            return ctx.get(dut.owned), ctx.get(dut.fill), ctx.get(dut.use), ctx.get(dut.ready), ctx.get(dut.waiting)

        seen.append(state())                                       # idle: both free, engine would wait
        assert not await pulse("commit")
        seen.append(state())
        assert not await pulse("commit")
        seen.append(state())                                       # both owned: the host must wait
        assert await pulse("commit")                               # refused, nothing changes
        seen.append(state())
        await pulse("release")                                     # slot 0 back to the host
        seen.append(state())
        assert not await pulse("commit")                           # refilled: slot 0 again
        seen.append(state())
        await pulse("clear")
        seen.append(state())

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # (owned, fill, use, ready, waiting)
    assert seen == [(0b00, 0, 0, 1, 1), (0b01, 1, 0, 1, 0), (0b11, 0, 0, 0, 0), (0b11, 0, 0, 0, 0),
                    (0b10, 0, 1, 1, 0), (0b11, 1, 1, 0, 0), (0b00, 0, 0, 1, 1)]


@pytest.mark.parametrize("bits", range(1, 9))
def test_packed_targets_sit_where_the_register_map_says(bits):
    values = np.random.default_rng(bits).integers(0, 1 << bits, size=37)
    raw = pack_targets(values, bits)
    assert len(raw) == (37 * bits + 7) // 8
    as_int = int.from_bytes(raw, "little")                          # bit k*bits.. of the slot is value k
    assert [(as_int >> (k * bits)) & ((1 << bits) - 1) for k in range(37)] == values.tolist()
    assert unpack_targets(raw, bits, 37).tolist() == values.tolist()


def test_packing_refuses_what_does_not_fit():
    with pytest.raises(ValueError, match="0-7 to pack in 3 bits"):
        pack_targets([1, 8], 3)
    with pytest.raises(ValueError, match="target bits must be 1-8"):
        pack_targets([1], 9)
    assert [target_bits_for(n) for n in (0, 1, 7, 8, 255)] == [1, 1, 3, 4, 8]
