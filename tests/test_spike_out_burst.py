"""The output spike FIFO's burst window behind the real SPI target, in Amaranth's simulator: events pushed
at random times, read many per frame (and one per frame through the register), frames cut anywhere. Every
event arrives once, whole and in order; a cut frame loses none."""

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from amaranth.sim import Simulator

from rram_cim.host.frames import read_frame
from rram_cim.rtl.spi_target import SPIPins, SPITarget
from rram_cim.rtl.spike_fifos import SpikeOutPort
from rram_cim.sim.amaranth_spi import AmaranthSPIMaster

DEPTH = 8
BURST = 0x100           # the window's base in this test's little map; the register is at 0


class Target(wiring.Component):
    """An SPI target whose map holds only the output FIFO: its register at 0-1, its burst window at 0x100."""

    spi: In(SPIPins())

    def __init__(self):
        super().__init__()
        self.port = SpikeOutPort(DEPTH)

    def elaborate(self, platform):
        m = Module()
        m.submodules.target = target = SPITarget()
        m.submodules.port = port = self.port
        wiring.connect(m, wiring.flipped(self.spi), target.spi)
        bus = target.bus
        in_burst = (bus.addr >= BURST) & (bus.addr < BURST + 2 * DEPTH)
        commit_in_burst = (bus.commit_addr >= BURST) & (bus.commit_addr < BURST + 2 * DEPTH)
        m.d.comb += [
            bus.addr_ok.eq((bus.addr < 2) | in_burst),
            port.host.addr.eq(bus.addr[0]), port.host.r_stb.eq(bus.r_stb & (bus.addr < 2)),
            port.host.r_commit.eq(bus.r_commit & (bus.commit_addr < 2)), port.host.commit_addr.eq(bus.commit_addr[0]),
            port.burst.addr.eq(bus.addr - BURST), port.burst.r_stb.eq(bus.r_stb & in_burst),
            port.burst.r_commit.eq(bus.r_commit & commit_in_burst), port.burst.commit_addr.eq(bus.commit_addr - BURST),
        ]
        with m.If(bus.addr < 2):
            m.d.comb += bus.r_data.eq(port.host.r_data)
        with m.Else():
            m.d.comb += bus.r_data.eq(port.burst.r_data)
        return m


@pytest.mark.parametrize("seed", range(4))
def test_bursts_and_single_reads_deliver_every_event_once_in_order_even_when_frames_are_cut(seed):
    rng = random.Random(seed)
    dut = Target()
    port = dut.port
    master = AmaranthSPIMaster(dut.spi, rng.choice([4, 5, 8]))
    pushed, received = [], []

    async def producer(ctx):
        for _ in range(60):
            await ctx.tick().repeat(rng.randrange(1, 150))
            event = rng.randrange(1 << 16)
            ctx.set(port.events.payload, event)
            ctx.set(port.events.valid, 1)
            await ctx.tick().until(port.events.ready)
            ctx.set(port.events.valid, 0)
            pushed.append(event)

    async def host(ctx):
        ctx.set(dut.spi.cs_n, 1)
        await ctx.tick().repeat(4)
        while len(received) < 60:
            present = ctx.get(port.level)
            header = 5                                   # command, address, dummy
            if present and rng.random() < 0.3:            # one event through the register
                frame, events = read_frame(0, 2), 1
            else:                                         # a burst of the events present now
                events = rng.randrange(1, present + 1) if present else 0
                frame = read_frame(BURST, 2 * events) if events else None
            if frame is None:
                await ctx.tick().repeat(50)
                continue
            cut = rng.random() < 0.25
            bits = rng.randrange(8 * header, 8 * len(frame)) if cut else None
            miso = await master.transfer(ctx, frame, bits)
            whole = ((bits if cut else 8 * len(frame)) // 8) - header      # data bytes fully clocked out
            data = miso[header:header + max(whole, 0)]
            for i in range(0, len(data) - 1, 2):
                received.append(data[i] | data[i + 1] << 8)

    sim = Simulator(dut)
    sim.add_clock(1e-6 / 12)
    sim.add_process(producer)
    sim.add_testbench(host)
    sim.run()
    assert received == pushed[:len(received)] and len(received) == 60
