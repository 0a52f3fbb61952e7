"""The block-RAM FIFO behaves as Amaranth's SyncFIFOBuffered, cycle for cycle, and synthesizes without
the read/write bypass logic the library FIFO costs on the iCE40."""

import random

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.sim import Simulator
from rram_cim.fpga.boards import ice40_stat, parse_synthesis_report
from rram_cim.rtl.block_fifo import BlockFIFO

CYCLES = 3000


@pytest.mark.parametrize("depth", [2, 3, 16, 17])
def test_block_fifo_matches_the_library_fifo_every_cycle(depth):
    m = Module()
    m.submodules.ours = ours = BlockFIFO(width=8, depth=depth)
    m.submodules.theirs = theirs = SyncFIFOBuffered(width=8, depth=depth)
    rng = random.Random(depth)
    mismatches, counts = [], {"written": 0, "read": 0, "full": 0}

    async def bench(ctx):
        # Bursts of writing and of reading, so the FIFOs fill up and drain, not just hover near empty.
        write_bias = 0.5
        for cycle in range(CYCLES):
            if cycle % 200 == 0:
                write_bias = rng.choice([0.2, 0.5, 0.9])
            w_en, r_en, data = rng.random() < write_bias, rng.random() < 1 - write_bias, rng.randrange(256)
            for fifo in (ours, theirs):
                ctx.set(fifo.w_en, w_en)
                ctx.set(fifo.r_en, r_en)
                ctx.set(fifo.w_data, data)
            state = [(ctx.get(f.w_rdy), ctx.get(f.r_rdy), ctx.get(f.level)) for f in (ours, theirs)]
            if state[0] != state[1]:
                mismatches.append((cycle, state))
            w_rdy, r_rdy, level = state[1]
            if r_rdy and ctx.get(ours.r_data) != ctx.get(theirs.r_data):
                mismatches.append((cycle, "r_data"))
            counts["written"] += w_en and w_rdy
            counts["read"] += r_en and r_rdy
            counts["full"] += level == depth
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert mismatches == []
    # The traffic exercised the FIFO: hundreds of entries through it, and it was full at times.
    assert counts["read"] > CYCLES // 10 and counts["full"] > 0


def test_block_fifo_refuses_a_depth_it_cannot_build():
    with pytest.raises(ValueError, match="at least 2"):
        BlockFIFO(width=8, depth=1)


def _ice40_cells(fifo, scratch) -> tuple[int, int, str]:
    """(LUT4, flip-flops, report) of `fifo` synthesized for the iCE40 with the YoWASP Yosys."""
    ports = [fifo.w_data, fifo.w_en, fifo.w_rdy, fifo.r_data, fifo.r_en, fifo.r_rdy, fifo.level]
    report = ice40_stat(verilog.convert(fifo, name="top", ports=ports), scratch)
    return (*parse_synthesis_report(report), report)


def test_block_fifo_needs_no_bypass_logic_on_the_ice40(tmp_path):
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    our_luts, our_flops, our_report = _ice40_cells(BlockFIFO(width=16, depth=64), tmp_path / "ours")
    their_luts, their_flops, _ = _ice40_cells(SyncFIFOBuffered(width=16, depth=64), tmp_path / "theirs")
    assert "SB_RAM40_4K" in our_report                  # the entries are in block RAM
    # The library FIFO's bypass holds a written entry and its address in flip-flops (16 + 6 here).
    assert our_flops + 16 <= their_flops and our_luts < their_luts, (our_luts, our_flops, their_luts, their_flops)
