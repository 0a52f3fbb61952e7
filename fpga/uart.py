"""An 8N1 UART, receiver and transmitter, with `lib.stream` byte interfaces.

`divisor` is system clock cycles per bit (12 for 1 Mbaud at the iCEBreaker's 12 MHz). The receiver
synchronizes its pin, finds the start bit's falling edge, samples each bit in its middle and drops a
frame whose stop bit is low (a break or a baud mismatch), flagging it.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx"]

DATA_BITS = 8


class UARTTx(wiring.Component):
    def __init__(self, divisor: int):
        if divisor < 2:
            raise ValueError(f"a UART needs at least 2 clock cycles per bit, not {divisor}")
        self.divisor = divisor
        super().__init__({"data": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        shift = Signal(DATA_BITS + 2, init=~0)          # stop, data LSB first, start: shifted out LSB first
        bits = Signal(range(DATA_BITS + 3))
        timer = Signal(range(self.divisor))
        m.d.comb += self.tx.eq(shift[0])
        with m.If(bits == 0):
            m.d.comb += self.data.ready.eq(1)
            with m.If(self.data.valid):
                m.d.sync += [shift.eq(Cat(0, self.data.payload, 1)), bits.eq(DATA_BITS + 2),
                             timer.eq(self.divisor - 1)]
        with m.Elif(timer == 0):
            m.d.sync += [shift.eq(Cat(shift[1:], 1)), bits.eq(bits - 1), timer.eq(self.divisor - 1)]
        with m.Else():
            m.d.sync += timer.eq(timer - 1)
        return m


class UARTRx(wiring.Component):
    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"the receiver needs at least 4 clock cycles per bit, not {divisor}")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "data": Out(stream.Signature(8)), "frame_error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        pin = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, pin, init=1)
        shift = Signal(DATA_BITS)
        bits = Signal(range(DATA_BITS + 1))
        timer = Signal(range(self.divisor + self.divisor // 2))
        m.d.comb += self.data.payload.eq(shift)
        with m.If(self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        m.d.sync += self.frame_error.eq(0)
        with m.FSM():
            with m.State("Idle"):
                with m.If(~pin):
                    # The first data bit's middle is one and a half bits after the start bit's edge.
                    m.d.sync += [timer.eq(self.divisor + self.divisor // 2 - 2), bits.eq(0)]
                    m.next = "Data"
            with m.State("Data"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [shift.eq(Cat(shift[1:], pin)), bits.eq(bits + 1), timer.eq(self.divisor - 1)]
                    with m.If(bits == DATA_BITS - 1):
                        m.next = "Stop"
            with m.State("Stop"):
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(pin):
                        m.d.sync += self.data.valid.eq(1)
                    with m.Else():
                        m.d.sync += self.frame_error.eq(1)
                    m.next = "Wait-High"
            with m.State("Wait-High"):                  # a break holds the line low: wait it out
                with m.If(pin):
                    m.next = "Idle"
        return m
