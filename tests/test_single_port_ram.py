"""Memories: the memory window its engine owns while it runs (host accesses in that time refused and
harmless; whole or per slot), the generic single-port RAM and SPRAM instances on the iCE40UP5K."""

import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from rram_cim.fpga.spram import SPRAM_BYTES, SinglePortSPRAM
from rram_cim.rtl.memory_window import MemoryWindow
from rram_cim.rtl.single_port_ram import SinglePortRAM


class UP5K:
    """Just enough of an amaranth-boards platform for the SPRAM choice."""
    device = "iCE40UP5K"


def _run(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("engine_writable", [False, True], ids=["engine-reads", "engine-writes"])
def test_window_belongs_to_the_engine_while_it_runs(engine_writable):
    dut = MemoryWindow(64, host_writable=True, engine_writable=engine_writable)
    seen = {}

    async def bench(ctx):
        host = dut.host

        async def host_write(addr, value):
            ctx.set(host.addr, addr)
            ctx.set(host.w_data, value)
            ctx.set(host.w_stb, 1)
            refused = ctx.get(dut.host_refused)
            await ctx.tick()
            ctx.set(host.w_stb, 0)
            return refused

        async def host_read(addr):              # fetched and sent in one cycle (a one-byte read)
            ctx.set(host.addr, addr)
            ctx.set(host.commit_addr, addr)
            ctx.set(host.r_stb, 1)
            ctx.set(host.r_commit, 1)
            refused = ctx.get(dut.host_refused)
            await ctx.tick()
            ctx.set(host.r_stb, 0)
            ctx.set(host.r_commit, 0)
            return ctx.get(host.r_data), refused

        assert not await host_write(3, 0x5A)
        seen["host"] = await host_read(3)
        ctx.set(dut.engine_owns, 1)                     # the engine runs
        if engine_writable:
            ctx.set(dut.engine.addr, 4)
            ctx.set(dut.engine.data, 0x77)
            ctx.set(dut.engine.en, 1)
            await ctx.tick()
            ctx.set(dut.engine.en, 0)
        else:
            ctx.set(dut.engine.addr, 3)
            await ctx.tick()
            seen["engine_reads"] = ctx.get(dut.engine.data)
        seen["refused_write"] = await host_write(3, 0x11)      # not carried out
        seen["refused_read"] = await host_read(4)              # reads 0
        ctx.set(dut.engine_owns, 0)
        seen["after"] = await host_read(3), await host_read(4)

    _run(dut, bench)
    assert seen["host"] == (0x5A, 0)
    assert seen["refused_write"] == 1 and seen["refused_read"] == (0, 1)
    if engine_writable:
        assert seen["after"] == ((0x5A, 0), (0x77, 0))
    else:
        assert seen["engine_reads"] == 0x5A and seen["after"][0] == (0x5A, 0)


def test_a_slotted_window_refuses_the_host_only_in_the_slot_the_engine_owns():
    """Two slots of 32 bytes: with slot 1 owned, the host still writes and reads slot 0 (the P&V host
    filling one slot while the engine programs from the other); slot 1 is refused and keeps its byte."""
    dut = MemoryWindow(64, host_writable=True, engine_writable=False, slots=2)
    seen = {}

    async def bench(ctx):
        host = dut.host

        async def access(addr, value=None):
            ctx.set(host.addr, addr)
            ctx.set(host.commit_addr, addr)
            strobes = (host.r_stb, host.r_commit) if value is None else (host.w_stb,)
            ctx.set(host.w_data, value or 0)
            for strobe in strobes:
                ctx.set(strobe, 1)
            refused = ctx.get(dut.host_refused)
            await ctx.tick()
            for strobe in strobes:
                ctx.set(strobe, 0)
            return (ctx.get(host.r_data) if value is None else None), refused

        await access(33, 0x21)
        ctx.set(dut.engine_owns, 0b10)
        seen["slot0_write"] = await access(1, 0x42)
        seen["slot0_read"] = await access(1)
        seen["slot1_write"] = await access(33, 0x99)
        seen["slot1_read"] = await access(33)
        ctx.set(dut.engine.addr, 33)
        await ctx.tick()
        seen["engine"] = ctx.get(dut.engine.data)
        # A burst reading slot 0 to its end fetches slot 1's first byte, never sent: no refusal for it.
        ctx.set(host.addr, 32)
        ctx.set(host.r_stb, 1)
        seen["prefetch"] = ctx.get(dut.host_refused)
        await ctx.tick()
        ctx.set(host.r_stb, 0)

    _run(dut, bench)
    assert seen["slot0_write"] == (None, 0) and seen["slot0_read"] == (0x42, 0)
    assert seen["slot1_write"] == (None, 1) and seen["slot1_read"] == (0, 1)
    assert seen["engine"] == 0x21 and seen["prefetch"] == 0


@pytest.mark.parametrize("slots", [0, 3, 128])
def test_a_window_refuses_slots_that_do_not_split_it(slots):
    with pytest.raises(ValueError, match="power of two"):
        MemoryWindow(64, host_writable=True, engine_writable=False, slots=slots)


@pytest.mark.parametrize("ram", [SinglePortRAM, SinglePortSPRAM], ids=["portable", "spram-elsewhere"])
def test_generic_ram_reads_a_cycle_later_and_holds_during_a_write(ram):
    dut = ram(16, init=list(range(16)))
    seen = []

    async def bench(ctx):
        ctx.set(dut.addr, 5)
        await ctx.tick()
        seen.append(ctx.get(dut.r_data))
        ctx.set(dut.w_en, 1)
        ctx.set(dut.w_data, 99)
        await ctx.tick()
        seen.append(ctx.get(dut.r_data))                 # held during the write
        ctx.set(dut.w_en, 0)
        await ctx.tick()
        seen.append(ctx.get(dut.r_data))

    _run(dut, bench)
    assert seen == [5, 5, 99]


@pytest.mark.parametrize("depth,blocks", [(8192, 1), (SPRAM_BYTES, 1), (SPRAM_BYTES + 1, 2)])
def test_up5k_gets_spram_instances(depth, blocks):
    text = verilog.convert(SinglePortSPRAM(depth), name="ram", platform=UP5K())
    assert text.count("SB_SPRAM256KA") == blocks
    with pytest.raises(ValueError, match="no initial contents"):
        verilog.convert(SinglePortSPRAM(16, init=[1]), name="ram", platform=UP5K())
