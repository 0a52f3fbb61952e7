"""Who owns each of the two P&V slots: the host filling it, or the engine programming its cells.

Streamed programming (docs/pv_engine.md): the host writes a slot's targets and commits it; the engine
programs that slot's cells while the host fills the other, then releases it. The slots alternate in a fixed
order on both sides (the k-th slot of a run is slot k mod 2), so one pointer per side says which is next.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..protocol import PV_SLOTS as SLOTS

__all__ = ["PVSlots", "SLOTS"]


class PVSlots(wiring.Component):
    """Two slot flags and the host's and the engine's pointers into them.

    What it does: `commit` hands slot `fill` to the engine (`owned[fill]` set, `fill` moves on), refused
    (`commit_refused`, nothing changes) while that slot is still owned; `release` gives slot `use` back
    (`owned[use]` cleared, `use` moves on); `clear` (a run's end) frees both and points both sides at slot 0,
    so every run starts from slot 0 and the host can prefill slots before its start. What it owns: the flags
    and the pointers. How it is verified: with the engine in tests/test_pv_engine.py (streamed runs that
    wait for slow commits) and through SPI in tests/test_cocotb_chip_pv.py.
    """

    def __init__(self):
        super().__init__({
            "commit":         In(1),
            "release":        In(1),
            "clear":          In(1),
            "commit_refused": Out(1),
            "owned":          Out(SLOTS),
            "fill":           Out(range(SLOTS)),
            "use":            Out(range(SLOTS)),
            "ready":          Out(1),         # slot `fill` is free: the host may read and refill it
            "waiting":        Out(1),         # slot `use` is not committed yet: the engine must wait
        })

    def elaborate(self, platform):
        m = Module()
        owned = self.owned
        m.d.comb += [self.ready.eq(~owned.bit_select(self.fill, 1)),
                     self.waiting.eq(~owned.bit_select(self.use, 1)),
                     self.commit_refused.eq(self.commit & ~self.ready)]
        taken = Signal(SLOTS)           # the slot a commit sets this cycle
        given = Signal(SLOTS)           # the slot a release frees this cycle
        with m.If(self.commit & self.ready):
            m.d.comb += taken.eq(1 << self.fill)
            m.d.sync += self.fill.eq(self.fill + 1)
        with m.If(self.release):
            m.d.comb += given.eq(1 << self.use)
            m.d.sync += self.use.eq(self.use + 1)
        m.d.sync += owned.eq((owned | taken) & ~given)
        with m.If(self.clear):
            m.d.sync += [owned.eq(0), self.fill.eq(0), self.use.eq(0)]
        return m
