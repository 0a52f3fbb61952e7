"""The analog handshake watchdog: a macro that never answers must not hang the chip.

Every wait on the analog macro (a sense request, a neuron strobe) is a handshake the chip cannot finish
alone: silicon with a broken sense amplifier, an FPGA emulation stuck clearing its memory or a
co-simulation whose bridge died would leave an engine busy until reset, deaf to its abort. The watchdog
counts the cycles one request has waited and, past the host's limit, strobes `expired`; the chip then
stops the running engine and sets ERROR.analog_timeout.

The limit is in units of 4096 cycles, so one byte of register reaches 1,048,576 cycles (87 ms at 12 MHz,
10 ms at 100 MHz: beyond the cell clearing and the integrate of the neurram-like emulated macro), and the
comparison is one 8-bit equality on the counter's upper bits: the iCE40 pays a 20-bit counter and its
compare.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["HandshakeWatchdog", "LIMIT_BITS", "TICK_BITS"]

#: Bits of the WATCHDOG.limit register.
LIMIT_BITS = 8
#: The limit counts units of 2**TICK_BITS cycles.
TICK_BITS = 12


class HandshakeWatchdog(wiring.Component):
    """Strobes `expired` when a request has waited (limit + 1) * 4096 cycles without an answer.

    `waiting` is high while a request is out (it may stay high across back-to-back requests);
    `answered` strobes with each answer and starts the count over.
    """

    waiting: In(1)
    answered: In(1)
    limit: In(LIMIT_BITS)
    expired: Out(1)

    def elaborate(self, platform):
        m = Module()
        waited = Signal(LIMIT_BITS + TICK_BITS)
        last_tick = waited[:TICK_BITS].all()
        m.d.comb += self.expired.eq(self.waiting & ~self.answered & last_tick
                                    & (waited[TICK_BITS:] == self.limit))
        with m.If(~self.waiting | self.answered | self.expired):
            m.d.sync += waited.eq(0)
        with m.Else():
            m.d.sync += waited.eq(waited + 1)
        return m
