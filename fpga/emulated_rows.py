"""The emulated macro's row tracker: which rows a time step drove, listed once each, per core.

The reference (`emulation.EmulatedMacroModel.drive_row`) keeps a list per core that a row joins the first
time it is strobed in a step; the integrate walks those lists and a step's end empties them. An MVM's
input lines (`drive_line`, only in a build with `ChipConfig.mvm`) are listed the same way, each with the
sign it was first strobed with.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..config import ChipConfig
from ..rtl.block_ram import block_ram, read_port

__all__ = ["EPOCH_BITS", "RowLists", "RowTracker"]

EPOCH_BITS = 16               # steps a row entry can tell apart: NEURON.timesteps is 16 bits


class RowLists(wiring.Signature):
    """The neuron unit's side of the row lists: it reads entry `index` of core `core`'s list (`row`, the
    cycle after, with its sign `negative` in an MVM build) and how long that list is (`count`, at once);
    it ends a step (`end_step`: the lists empty), starts a run (`new_run`, after holding `wipe` until
    `wiped`: every row forgotten)."""

    def __init__(self, config: ChipConfig):
        signed_lines = {"negative": In(1)} if config.mvm else {}
        super().__init__(signed_lines | {
            "core":     Out(range(max(config.cores, 2))),
            "index":    Out(range(config.rows + 1)),
            "count":    In(range(config.rows + 1)),
            "row":      In(range(config.rows)),
            "end_step": Out(1),
            "new_run":  Out(1),
            "wipe":     Out(1),
            "wiped":    In(1),
        })


class RowTracker(wiring.Component):
    """Lists each row strobed (`strobe`, `core`, `row`) once per step, in the order first strobed.

    Resources: a list and a count per core, and an entry per row holding the step (epoch) that listed it
    last, in block RAM. A new run wipes the entries, one per cycle, and sets the epoch back to 1 (a run's
    steps never wrap it: NEURON.timesteps is 16 bits)."""

    def __init__(self, config: ChipConfig):
        self._config = config
        signed_lines = {"negative": In(1)} if config.mvm else {}
        super().__init__({"strobe": In(1), "core": In(range(config.cores)), "row": In(range(config.rows))}
                         | signed_lines | {"lists": In(RowLists(config))})

    def elaborate(self, platform):
        m = Module()
        config, lists = self._config, self.lists
        row_slots = config.cores * config.rows
        # Which rows this step has listed already: each row's entry holds the step (epoch) that listed it.
        m.submodules.seen = seen_mem = block_ram(shape=EPOCH_BITS, depth=row_slots)
        seen_wr, seen_rd = seen_mem.write_port(), read_port(m, seen_mem, name="seen_read")
        epoch = Signal(EPOCH_BITS, init=1)
        # A row named twice in a step is driven once. A strobe looks its row up; a cycle later, if the
        # entry is not this step's, the row is listed and its entry tagged. A repeat in the very next
        # cycle reads the entry as that tag is written, so the slot tagged last is compared instead (a
        # bypass of two registers, where a transparent read port would cost a data-wide one).
        seen_core, seen_row, seen_valid = Signal.like(self.core), Signal.like(self.row), Signal()
        m.d.comb += seen_rd.addr.eq(self.core * config.rows + self.row)
        m.d.sync += [seen_valid.eq(self.strobe), seen_core.eq(self.core), seen_row.eq(self.row)]
        # A list entry: the row, and in an MVM build the line's sign above it.
        entry = seen_row
        if config.mvm:
            seen_negative = Signal()
            m.d.sync += seen_negative.eq(self.negative)
            entry = Cat(seen_row, seen_negative)
        looked_up = Signal(range(row_slots))
        tagged_slot, tagged = Signal.like(looked_up), Signal()
        m.d.comb += looked_up.eq(seen_core * config.rows + seen_row)
        fresh = seen_valid & (seen_rd.data != epoch) & ~(tagged & (tagged_slot == looked_up))
        m.d.sync += [tagged.eq(fresh), tagged_slot.eq(looked_up)]

        clear = lists.end_step | lists.new_run
        for core in range(config.cores):
            # Listed while rows are strobed, read while integrating: never both in one cycle.
            m.submodules[f"driven{core}"] = listed = block_ram(shape=len(entry), depth=config.rows)
            list_wr, list_rd = listed.write_port(), read_port(m, listed, name=f"driven{core}_read")
            count = Signal(range(config.rows + 1), name=f"driven_count{core}")
            take = fresh & (seen_core == core)
            m.d.comb += [list_wr.addr.eq(count), list_wr.data.eq(entry), list_wr.en.eq(take),
                         list_rd.addr.eq(lists.index)]
            with m.If(clear):
                m.d.sync += count.eq(0)
            with m.Elif(take):
                m.d.sync += count.eq(count + 1)
            chosen = [lists.count.eq(count), lists.row.eq(list_rd.data[:len(seen_row)])]
            if config.mvm:
                chosen.append(lists.negative.eq(list_rd.data[len(seen_row)]))
            if core == 0:
                m.d.comb += chosen                 # unless another core is chosen
            else:
                with m.If(lists.core == core):
                    m.d.comb += chosen

        slot = Signal(range(row_slots))
        m.d.comb += lists.wiped.eq(slot == row_slots - 1)
        with m.If(lists.wipe):
            m.d.comb += [seen_wr.addr.eq(slot), seen_wr.data.eq(0), seen_wr.en.eq(1)]
            m.d.sync += slot.eq(Mux(lists.wiped, 0, slot + 1))
        with m.Else():
            m.d.comb += [seen_wr.addr.eq(looked_up), seen_wr.data.eq(epoch), seen_wr.en.eq(fresh)]
        with m.If(lists.new_run):
            m.d.sync += epoch.eq(1)
        with m.Elif(lists.end_step):
            m.d.sync += epoch.eq(epoch + 1)
        return m
