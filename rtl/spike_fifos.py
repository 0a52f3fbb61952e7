"""The host's spike FIFO ports: 16-bit events written and read one byte at a time over the register bus."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..protocol import EVENT_BITS
from .block_fifo import BlockFIFO
from .regbus import WindowPort

__all__ = ["SpikeInPort", "SpikeOutPort", "EVENT_BITS"]


class SpikeInPort(wiring.Component):
    """Host-to-chip events: writing the low byte then the high byte pushes one event, through the
    `host` register or anywhere in the `burst` window (even offsets low, odd offsets high), so one frame
    can push many events.

    A push into a full FIFO drops the event and strobes `overflow` (the sticky ERROR bit), never silent.
    """

    def __init__(self, depth: int):
        self._depth = depth
        super().__init__({
            "host": In(WindowPort(1)),
            "burst": In(WindowPort(max(1, (2 * depth - 1).bit_length()))),
            "events": Out(stream.Signature(EVENT_BITS)),
            "level": Out(range(depth + 1)),
            "overflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = BlockFIFO(width=EVENT_BITS, depth=self._depth)

        low = Signal(8)
        # One byte per bus transfer: from the register or from the burst window, never both at once.
        w_stb = self.host.w_stb | self.burst.w_stb
        high_byte = Mux(self.burst.w_stb, self.burst.addr[0], self.host.addr[0])
        w_data = Mux(self.burst.w_stb, self.burst.w_data, self.host.w_data)
        push = w_stb & high_byte
        with m.If(w_stb & ~high_byte):
            m.d.sync += low.eq(w_data)
        m.d.comb += [
            fifo.w_data.eq(Cat(low, w_data)),
            fifo.w_en.eq(push),
            self.overflow.eq(push & ~fifo.w_rdy),
            self.events.payload.eq(fifo.r_data),
            self.events.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.events.ready),
            self.level.eq(fifo.level),
        ]
        return m


class SpikeOutPort(wiring.Component):
    """Chip-to-host events: reading the low byte then the high byte returns the head event; the pop
    happens when the high byte has been shifted out to the host (`r_commit`), so a frame cut short
    loses nothing. Reading an empty FIFO returns zeros and strobes `underflow`."""

    def __init__(self, depth: int):
        self._depth = depth
        super().__init__({
            "host": In(WindowPort(1)),
            "events": In(stream.Signature(EVENT_BITS)),
            "level": Out(range(depth + 1)),
            "underflow": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = BlockFIFO(width=EVENT_BITS, depth=self._depth)

        m.d.comb += [
            fifo.w_data.eq(self.events.payload),
            fifo.w_en.eq(self.events.valid),
            self.events.ready.eq(fifo.w_rdy),
            self.level.eq(fifo.level),
        ]
        head = fifo.r_data.word_select(self.host.addr, 8)
        with m.If(self.host.r_stb):
            m.d.sync += self.host.r_data.eq(head & fifo.r_rdy.replicate(8))
        pop = self.host.r_commit & (self.host.commit_addr == 1)
        m.d.comb += [fifo.r_en.eq(pop), self.underflow.eq(pop & ~fifo.r_rdy)]
        return m
