"""Memories for FPGAs: the generic single-port RAM, the memory window its engine owns while it runs (host
accesses in that time refused and harmless, single- or dual-port), and SPRAM instances on the iCE40UP5K."""

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
@pytest.mark.parametrize("ram", [SinglePortRAM, SinglePortSPRAM, None], ids=["single-port", "spram", "dual-port"])
def test_window_belongs_to_the_engine_while_it_runs(ram, engine_writable):
    dut = MemoryWindow(64, host_writable=True, engine_writable=engine_writable, ram=ram)
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

        async def host_read(addr):
            ctx.set(host.addr, addr)
            ctx.set(host.r_stb, 1)
            refused = ctx.get(dut.host_refused)
            await ctx.tick()
            ctx.set(host.r_stb, 0)
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
