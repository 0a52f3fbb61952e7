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
    """Chip-to-host events, read through the `host` register (low byte then high byte) or, many in one
    frame, through the `burst` window (even offsets low bytes, odd offsets high bytes). An event is popped
    when its high byte has been shifted out to the host (`r_commit`), so a frame cut short loses nothing.
    Reading with no event returns zeros, and the pop that finds none strobes `underflow`.

    The SPI target fetches each byte one byte ahead of the one it shifts out, so in a burst an event's low
    byte is fetched while the previous event's high byte is still on its way, before that event's pop. So
    the head and the event behind it wait in two registers (`depth` entries in all, as before): a burst's
    low byte fetched the cycle after the previous low byte was committed is the second one's. A burst must
    not read past the events present when it starts (the host reads `out_level` first): an event arriving
    mid-burst could otherwise pair a low byte of nothing with its high byte.

    With `burst` off (`ChipConfig.output_burst`) there is no window and no look-ahead: the FIFO's own
    output register is the head."""

    def __init__(self, depth: int, burst: bool = True):
        if burst and depth < 4:
            raise ValueError(f"the output spike FIFO needs a depth of at least 4 with its burst window, not {depth}")
        self._depth, self._burst = depth, burst
        members = {
            "host": In(WindowPort(1)),
            "events": In(stream.Signature(EVENT_BITS)),
            "level": Out(range(depth + 1)),
            "underflow": Out(1),
        }
        if burst:
            members["burst"] = In(WindowPort(max(1, (2 * depth - 1).bit_length())))
        super().__init__(members)

    def elaborate(self, platform):
        return self._with_look_ahead() if self._burst else self._plain()

    def _plain(self):
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

    def _with_look_ahead(self):
        m = Module()
        m.submodules.fifo = fifo = BlockFIFO(width=EVENT_BITS, depth=self._depth - 2)
        host, burst = self.host, self.burst

        # The look-ahead: head (0) and the event behind it (1), refilled from the FIFO as they empty.
        head, behind = Signal(EVENT_BITS), Signal(EVENT_BITS)
        head_valid, behind_valid = Signal(), Signal()
        pop = ((host.r_commit & (host.commit_addr == 1)) | (burst.r_commit & burst.commit_addr[0]))
        take = fifo.r_rdy & (~behind_valid | pop)
        m.d.comb += [
            fifo.w_data.eq(self.events.payload),
            fifo.w_en.eq(self.events.valid),
            self.events.ready.eq(fifo.w_rdy),
            fifo.r_en.eq(take),
            self.level.eq(fifo.level + head_valid + behind_valid),
            self.underflow.eq(pop & ~head_valid),
        ]
        with m.If(pop):
            m.d.sync += [head.eq(behind), head_valid.eq(behind_valid), behind_valid.eq(0)]
            with m.If(take & behind_valid):
                m.d.sync += [behind.eq(fifo.r_data), behind_valid.eq(1)]
            with m.Elif(take):
                m.d.sync += [head.eq(fifo.r_data), head_valid.eq(1)]
        with m.Elif(take & ~head_valid):
            m.d.sync += [head.eq(fifo.r_data), head_valid.eq(1)]
        with m.Elif(take):
            m.d.sync += [behind.eq(fifo.r_data), behind_valid.eq(1)]

        # A burst's low byte fetched the cycle after a low byte's commit belongs to the next event (the
        # high byte between them is on its way and pops the head when committed).
        low_committed = Signal()
        m.d.sync += low_committed.eq(burst.r_commit & ~burst.commit_addr[0])
        ahead = ~burst.addr[0] & low_committed
        with m.If(host.r_stb):
            m.d.sync += host.r_data.eq(head.word_select(host.addr, 8) & head_valid.replicate(8))
        with m.If(burst.r_stb):
            event = Mux(ahead, behind, head)
            present = Mux(ahead, behind_valid, head_valid)
            m.d.sync += burst.r_data.eq(event.word_select(burst.addr[0], 8) & present.replicate(8))
        return m
