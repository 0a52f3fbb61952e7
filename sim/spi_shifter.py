"""An SPI mode 0 controller in gateware, for co-simulation: Python hands it a frame 32 bytes at a time.

`sim.spi_master.SPIMaster` clocks a frame from Python, two wake-ups per bit at SCK = f_sys / 4: about 15,000
for the ~970 bytes of a co-simulated digit, which cost more wall time than simulating the chip. The shifter
is the same controller in the simulated netlist, clocked by the system clock: the bench writes a chunk of up
to `CHUNK_BYTES` bytes, toggles `start`, and is woken once when `done` toggles back, with CIPO's bits in
`received`. So `sim.cocotb_serve` (the co-simulation transport) wakes about once per 32 bytes.

Timing per bit is SPIMaster's: COPI set while SCK is low, CIPO sampled as SCK rises, SCK high for
`high` and low for `low` system cycles; CS falls with the first bit and rises `low` cycles after the last
SCK fall, then stays high for two SCK periods. Between the chunks of one frame SCK rests low, which mode 0
allows. Its edges fall on system clock edges; the SPIMaster's, which fall anywhere in a cycle, are what
the cocotb bench tests drive (they are the CDC check of the SPI target).
"""

from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..rtl.spi_target import SPIPins

__all__ = ["SPIShifter", "ShifterControls", "CHUNK_BYTES", "CS_HIGH_PERIODS"]

#: Bytes per chunk: a co-simulated digit's frames (the largest, an input burst, ~500 bytes) in ~50 wake-ups.
CHUNK_BYTES = 32
#: SCK periods CS stays high between frames (as SPIMaster).
CS_HIGH_PERIODS = 2


class ShifterControls(wiring.Signature):
    """What the bench drives and reads (directions as the shifter sees them): a chunk and how many of its bits to send (its first bit is the
    chunk's most significant), whether CS rises after it, and the start / done toggles."""

    def __init__(self):
        super().__init__({
            "chunk": In(8 * CHUNK_BYTES),
            "bits": In(range(8 * CHUNK_BYTES + 1)),
            "last": In(1),
            "start": In(1),
            "done": Out(1),
            "received": Out(8 * CHUNK_BYTES),
        })


class SPIShifter(wiring.Component):
    """`controls` in, `spi` out (SCK high `high` and low `low` system cycles, both at least 1)."""

    def __init__(self, high: int, low: int):
        if high < 1 or low < 1:
            raise ValueError(f"SCK needs at least a cycle high and low, not {high} / {low}")
        self._high, self._low = high, low
        super().__init__({"controls": Out(ShifterControls()), "spi": Out(SPIPins())})

    def elaborate(self, platform):
        m = Module()
        controls, spi = self.controls, self.spi
        width = 8 * CHUNK_BYTES
        shift = Signal(width)
        left = Signal(range(width + 1))
        last = Signal()
        started = Signal()                       # the start toggle as last taken
        timer = Signal(range(max(self._high, self._low, CS_HIGH_PERIODS * (self._high + self._low)) + 1))
        sck, cs_n = Signal(), Signal(init=1)
        m.d.comb += [spi.sck.eq(sck), spi.cs_n.eq(cs_n), spi.copi.eq(~cs_n & shift[-1])]
        m.d.comb += controls.done.eq(started)
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(controls.start != started):
                    m.d.sync += [shift.eq(controls.chunk), left.eq(controls.bits), last.eq(controls.last),
                                 cs_n.eq(0), timer.eq(self._low - 1)]
                    m.next = "LOW"
            with m.State("LOW"):
                with m.If(timer == 0):
                    # Sampled as SCK rises: what CIPO holds in the cycle before the edge.
                    m.d.sync += [controls.received.eq(controls.received << 1 | spi.cipo), sck.eq(1),
                                 timer.eq(self._high - 1)]
                    m.next = "HIGH"
            with m.State("HIGH"):
                with m.If(timer == 0):
                    m.d.sync += [sck.eq(0), shift.eq(shift << 1), left.eq(left - 1), timer.eq(self._low - 1)]
                    with m.If(left != 1):
                        m.next = "LOW"
                    with m.Elif(last):
                        m.next = "TAIL"
                    with m.Else():                      # the frame goes on with the next chunk, SCK low
                        m.d.sync += started.eq(controls.start)
                        m.next = "IDLE"
            with m.State("TAIL"):
                with m.If(timer == 0):
                    m.d.sync += [cs_n.eq(1), timer.eq(CS_HIGH_PERIODS * (self._high + self._low) - 1)]
                    m.next = "GAP"
            with m.State("GAP"):
                with m.If(timer == 0):
                    m.d.sync += started.eq(controls.start)
                    m.next = "IDLE"
        return m
