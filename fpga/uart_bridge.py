"""UART to SPI frames: how a host reaches the chip on a board, with the same frames as over SPI.

The host sends a frame as its length (2 bytes, big-endian) and its bytes. The bridge clocks each byte
into the chip's SPI target as it arrives, chip select low for the whole frame, and sends back each byte
CIPO carried. So the host reads as many bytes as it sent, exactly what an SPI master would have seen,
and the host code (`RegisterClient`, `Programmer`, ...) does not change.

SCK runs at f_sys / (2 * `sck_half`) (the target needs at most f_sys / 4), faster than the UART's
bytes arrive, so the frame is paced by the UART. If the host stops in the middle of a frame for
`timeout` cycles, the bridge raises chip select (the target flags the frame truncated) and waits for a
new length.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from ..rtl.block_fifo import BlockFIFO
from ..rtl.spi_target import SPIPins
from .uart import UARTRx, UARTTx

__all__ = ["SCK_HALF", "UartSpiBridge"]

#: Bytes of received data and of CIPO bytes the bridge can hold (buffered FIFOs: their storage maps to
#: block RAM, where an unbuffered one's combinational read would cost some 140 flip-flops each).
FIFO_DEPTH = 16
#: System cycles per half period of SCK: f_sys / 8, twice as slow as the SPI target takes (f_sys / 4).
SCK_HALF = 4


class UartSpiBridge(wiring.Component):
    def __init__(self, divisor: int, sck_half: int = SCK_HALF, timeout: int = 1 << 20):
        if sck_half < 2:
            raise ValueError("the SPI target needs SCK at most f_sys / 4 (sck_half >= 2)")
        self.divisor = divisor
        self.sck_half = sck_half
        self.timeout = timeout
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "spi": Out(SPIPins()),
                          "frame_error": Out(1), "active": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.uart_rx = rx = UARTRx(self.divisor)
        m.submodules.uart_tx = tx = UARTTx(self.divisor)
        m.submodules.rx_fifo = rx_fifo = BlockFIFO(width=8, depth=FIFO_DEPTH)
        m.submodules.tx_fifo = tx_fifo = BlockFIFO(width=8, depth=FIFO_DEPTH)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), self.frame_error.eq(rx.frame_error)]
        connect(m, rx.data, rx_fifo.w_stream)
        connect(m, tx_fifo.r_stream, tx.data)

        spi = self.spi
        remaining = Signal(16)
        shift = Signal(8)
        received = Signal(8)
        bit = Signal(range(8))
        phase = Signal(range(self.sck_half))
        idle = Signal(range(self.timeout + 1))
        cs_n = Signal(init=1)
        sck = Signal()
        m.d.comb += [spi.cs_n.eq(cs_n), spi.sck.eq(sck), spi.copi.eq(shift[7]), self.active.eq(~cs_n)]
        byte_in = rx_fifo.r_stream

        with m.FSM():
            with m.State("Length-High"):
                m.d.comb += byte_in.ready.eq(1)
                with m.If(byte_in.valid):
                    m.d.sync += remaining[8:].eq(byte_in.payload)
                    m.next = "Length-Low"
            with m.State("Length-Low"):
                m.d.comb += byte_in.ready.eq(1)
                with m.If(byte_in.valid):
                    m.d.sync += [remaining[:8].eq(byte_in.payload), idle.eq(0)]
                    m.next = "Next-Byte"
            with m.State("Next-Byte"):
                with m.If(remaining == 0):
                    m.d.sync += cs_n.eq(1)
                    m.next = "Length-High"
                with m.Elif(byte_in.valid & tx_fifo.w_rdy):       # room for the CIPO byte it makes
                    m.d.comb += byte_in.ready.eq(1)
                    m.d.sync += [shift.eq(byte_in.payload), cs_n.eq(0), bit.eq(0), phase.eq(0),
                                 remaining.eq(remaining - 1), idle.eq(0)]
                    m.next = "Low"
                with m.Else():
                    m.d.sync += idle.eq(idle + 1)
                    with m.If(idle == self.timeout):
                        m.d.sync += cs_n.eq(1)
                        m.next = "Length-High"
            # Mode 0: COPI set while SCK is low, both sides sample on the rising edge.
            with m.State("Low"):
                m.d.sync += phase.eq(phase + 1)
                with m.If(phase == self.sck_half - 1):
                    m.d.sync += [sck.eq(1), phase.eq(0), received.eq(Cat(spi.cipo, received[:7]))]
                    m.next = "High"
            with m.State("High"):
                m.d.sync += phase.eq(phase + 1)
                with m.If(phase == self.sck_half - 1):
                    m.d.sync += [sck.eq(0), phase.eq(0), bit.eq(bit + 1), shift.eq(shift << 1)]
                    with m.If(bit == 7):
                        m.next = "Answer"
                    with m.Else():
                        m.next = "Low"
            with m.State("Answer"):
                m.d.comb += [tx_fifo.w_en.eq(1), tx_fifo.w_data.eq(received)]
                m.next = "Next-Byte"
        return m
