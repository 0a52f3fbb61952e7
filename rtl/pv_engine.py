"""The program-and-verify engine: programs one cell, a row or a whole core from the target buffer.

Per cell it runs the algorithm of `models.pv` (the reference it is scored against pulse for pulse):
verify; while outside `target +- window` and under the pulse budget, SET below the window (ISPVA
steps the top electrode, IGVVA the gate; cumulative mode repeats the same pulse) or, above it, RESET
and restart the ramp (or give up if RESET on overshoot is off); verify after every pulse. RADAR steps
the gate at the full top electrode until the first overshoot, then ramps the top electrode (SET) and
the source line (RESET) at the last coarse gate around the window. A cell that
never verifies (stuck) stops at the budget and is logged: the engine never hangs on it. Nor on a macro
that never answers a sense: `halt` (the chip's watchdog) ends the run where it waits.

Every pulse and sense goes through the row/column drivers (`CellDriver`), so their interlocks hold.
Triangular pulses are the drivers' (the engine only asks for them). A forming run (`form`) sends FORM
pulses with the top electrode ramped as in ISPVA until the cell reads at least `target - window`.
Verify reads that hold (`PV.verify`): each verify senses the cell 2^reads_log2 times and decides on the
mean code (the sum plus half the count, shifted: rounded half up), and with `confirm` a cell that verifies
is verified once more, with no pulse between, before it passes; if that read fails, programming goes on
from its code (a build with `ChipConfig.pv_averaging` off senses once per verify; the confirming verify
stays). Per-level recipes (EMBER's controller does this): with `per_level`, each target
is a level index; before programming the cell the engine fetches that level's entry from the level table (layout in
`protocol.LevelEntry`) over the target code, DAC ramps, RESET code, pulse width, budget and window.

Streamed: the engine's memory is two slots of `pv_slot_cells` cells, not one byte per cell of the array.
The k-th cell of a run takes its target (packed `target_bits` bits each) from entry k mod slot_cells of
slot (k / slot_cells) mod 2 and leaves its pulse count and verify code there; at a slot's start the engine
waits until the host has committed it (`PVSlots`), and at its end releases it for the host to refill.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.utils import ceil_log2
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from ..config import ChipConfig
from ..protocol import (DAC_FIELDS, FAILED_LOG_ENTRY_BYTES, LEVEL_ENTRY_BYTES, LEVEL_FIELDS, LEVEL_USED_BYTES,
                        RECIPE_FIELDS, Algorithm, FailedLogEntry, Op, Scope)
from .cell_driver import CellRequest, CellResponse, read_limit_code
from .engine_settings import settings_layout
from .pv_slots import SLOTS, PVSlots

__all__ = ["PVEngine", "PVSettings", "Scope", "Algorithm"]

COUNTER_BITS = 32


def PVSettings(config: ChipConfig) -> data.StructLayout:
    """The engine's recipe: the P&V registers, named as rtl/engine_settings.py names them from the RDL;
    the selection narrowed to the array, the DAC codes to the DAC."""
    return settings_layout(config, "pv_", {
        "algorithm": Algorithm, "scope": Scope,
        "core": range(config.cores), "row": range(config.rows), "column": range(config.columns),
        "rows": range(config.rows + 1), "target_bits": range(9),
        **{name: config.dac_bits for name in DAC_FIELDS},
    })


class PVEngine(wiring.Component):
    """Programs the cells a P&V run selects (one cell, a row or a core) into their verify windows.

    What it does: per cell, verify; then SET (ISPVA/IGVVA, incremental or cumulative), RESET on overshoot,
    or FORM pulses through the drivers until the cell verifies or its budget runs out (`models.pv`'s
    algorithm, pulse for pulse). What it owns: the run's cell counter and pulse budget, the working copy
    of a per-level recipe, its counters (`cells_done`, `cells_failed`, `pulses_total`), the slots' owners
    (`PVSlots`: the host commits, the engine releases) and the write ports of `pv_pulses`, `pv_codes` and
    `failed_log`; it reads `pv_target` (the slots it owns), `pv_levels` and the P&V registers in place (the
    chip refuses host access to those while the engine owns them). It never touches the macro
    port itself: every pulse and sense is a `CellRequest` to the `CellDriver`. How it is verified: in
    Amaranth's simulator against `models.pv` on the Python macro (tests/test_pv_engine.py), through SPI
    on the whole chip in cocotb on Icarus and Verilator for every recipe (tests/test_cocotb_chip_pv.py),
    at the chip's status byte (tests/test_chip_handshakes.py) and in the golden trace
    (tests/test_golden_trace.py).
    """

    def __init__(self, config: ChipConfig):
        self._config = config
        slot_bytes = ceil_log2(SLOTS * config.pv_slot_cells)
        super().__init__({
            "settings":      In(PVSettings(config)),
            "start":         In(1),
            "stop":          In(1),
            # The macro stopped answering (the chip's watchdog): end the run at once, where it waits.
            "halt":          In(1),
            "busy":          Out(1),
            "done":          Out(1),
            # The host's side of the slots (PV_STREAM, CTRL.pv_commit): see `PVSlots`.
            "commit":        In(1),
            "commit_refused": Out(1),
            "owned":         Out(SLOTS),
            "fill":          Out(range(SLOTS)),
            "ready":         Out(1),
            "cells_done":    Out(COUNTER_BITS),
            "cells_failed":  Out(COUNTER_BITS),
            "pulses_total":  Out(COUNTER_BITS),
            # Memory ports, seen from the memory (`lib.memory`'s signatures), hence In. The slots' targets
            # and the per-level recipe table (LEVEL_ENTRY_BYTES per level): synchronous read ports (data
            # the cycle after the address).
            "target":        In(ReadPort.Signature(addr_width=slot_bytes, shape=8)),
            "level":         In(ReadPort.Signature(addr_width=ceil_log2(config.pv_levels * LEVEL_ENTRY_BYTES),
                                                    shape=8)),
            # Per-cell pulse counts and last verify codes, a byte per slot entry, written together when a
            # cell is finished.
            "pulses":        In(WritePort.Signature(addr_width=slot_bytes, shape=8)),
            "codes":         In(WritePort.Signature(addr_width=slot_bytes, shape=8)),
            # The failed-cell log, one byte at a time, FAILED_LOG_ENTRY_BYTES per entry.
            "log":           In(WritePort.Signature(
                                 addr_width=ceil_log2(config.failed_log_depth * FAILED_LOG_ENTRY_BYTES), shape=8)),
            "cell":          Out(stream.Signature(CellRequest(config))),
            "answer":        In(stream.Signature(CellResponse(config))),
        })

    def elaborate(self, platform):
        config = self._config
        m = Module()
        # The P&V registers are read where they are (the chip refuses host writes to them while the engine
        # runs); only the recipe fields a per-level entry overrides, cell by cell, are working copies.
        live = self.settings
        overridden = [name for name in LEVEL_FIELDS if name in RECIPE_FIELDS]     # in the level entry's order
        s = Signal(data.StructLayout({name: PVSettings(config).members[name] for name in overridden}))
        dac_top = (1 << config.dac_bits) - 1

        row = Signal(range(config.rows))
        column = Signal(range(config.columns))
        target = Signal(8)
        code = Signal(config.adc_bits)
        # The averaged verify read: the codes sensed so far summed, the senses taken, and whether the
        # read under way confirms one that verified already.
        max_reads_log2 = (1 << len(live.reads_log2)) - 1
        total = Signal(config.adc_bits + max_reads_log2)
        reads = Signal(range(1 << max_reads_log2))
        half = Signal(range(1 << max_reads_log2))        # what the sum starts from: rounds the mean half up
        with m.Switch(live.reads_log2):
            for k in range(1 << len(live.reads_log2)):
                with m.Case(k):
                    m.d.comb += half.eq((1 << k) >> 1)
        confirming = Signal()
        pulses = Signal(8)
        bl_now = Signal(config.dac_bits)
        wl_now = Signal(config.dac_bits)
        # RADAR: the fine phase's source-line ramp, the last coarse gate it SETs at, and the phase.
        sl_now = Signal(config.dac_bits)
        wl_last = Signal(config.dac_bits)
        fine = Signal()
        aborting = Signal()
        passed = Signal()
        log_entries = Signal(range(config.failed_log_depth + 1))
        log_byte = Signal(range(FAILED_LOG_ENTRY_BYTES))
        entry = Signal(FailedLogEntry)          # the failed-cell log entry being written

        fetch = Signal(range(LEVEL_USED_BYTES + 1))
        level = Signal(8)
        m.d.comb += self.level.addr.eq(level * LEVEL_ENTRY_BYTES + fetch)

        # The slots: this cell's entry in slot `use`, and where its packed target starts (entry x bits).
        m.submodules.slots = slots = PVSlots()
        m.d.comb += [slots.commit.eq(self.commit), self.commit_refused.eq(slots.commit_refused),
                     self.owned.eq(slots.owned), self.fill.eq(slots.fill), self.ready.eq(slots.ready)]
        slot_entry = Signal(range(config.pv_slot_cells))
        bit_at = Signal(ceil_log2(8 * config.pv_slot_cells))
        entry_bits = ceil_log2(config.pv_slot_cells)
        byte = Signal(entry_bits)
        low_byte = Signal(8)            # the first of the two bytes a packed target may straddle
        # A build without packing reads a target per byte: no bit offset, no second byte.
        m.d.comb += [byte.eq(bit_at >> 3 if config.pv_packing else slot_entry),
                     self.target.addr.eq(Cat(byte, slots.use)),
                     self.pulses.addr.eq(Cat(slot_entry, slots.use)), self.codes.addr.eq(Cat(slot_entry, slots.use)),
                     self.pulses.data.eq(pulses), self.codes.data.eq(code)]
        if config.pv_packing:
            unpacked = (Cat(low_byte, self.target.data) >> bit_at[:3])[:8] & ((Const(1, 9) << live.target_bits) - 1)[:8]
        else:
            unpacked = self.target.data

        # Window tests on codes widened by one bit so target +- window cannot wrap.
        low_edge = Signal(range(-256, 512))
        high_edge = Signal(range(-256, 512))
        m.d.comb += [low_edge.eq(target - s.window), high_edge.eq(target + s.window)]
        below = code < low_edge
        above = code > high_edge

        def step(now, stp, stop):
            widened = now + stp
            return Mux(widened > stop, stop, widened)

        request = self.cell.payload
        m.d.comb += [request.core.eq(live.core), request.row.eq(row), request.column.eq(column),
                     request.setup.eq(live.setup_cycles), request.triangular.eq(live.triangular)]
        # A forming run ramps the top electrode (as ISPVA does) and accepts any level from the window up.
        ramps_bl = (live.algorithm == Algorithm.ISPVA) | live.form
        # A build without RADAR (ChipConfig.pv_radar off: the chip refuses its start) leaves its logic out.
        radar = ((live.algorithm == Algorithm.RADAR) & ~live.form) if config.pv_radar else Const(0, 1)
        verified = ~below & (~above | live.form)

        with m.If(self.stop & self.busy):
            m.d.sync += aborting.eq(1)

        last_column = column == Mux(live.scope == Scope.CELL, live.column, config.columns - 1)
        last_row = row == Mux(live.scope == Scope.CORE, config.rows - 1,
                              Mux(live.scope == Scope.ROW, live.row + live.rows - 1, live.row))

        with m.FSM() as fsm:
            with m.State("Idle"):
                with m.If(self.stop & ~self.start):
                    # An abort with no run frees slots committed for a run that never started.
                    m.d.comb += slots.clear.eq(1)
                with m.If(self.start):
                    m.d.sync += [
                        *(getattr(s, name).eq(getattr(live, name)) for name in overridden),
                        aborting.eq(0), self.done.eq(0),
                        self.cells_done.eq(0), self.cells_failed.eq(0), self.pulses_total.eq(0),
                        log_entries.eq(0), total.eq(half), reads.eq(0), slot_entry.eq(0), bit_at.eq(0),
                        row.eq(Mux(self.settings.scope == Scope.CORE, 0, self.settings.row)),
                        column.eq(Mux(self.settings.scope == Scope.CELL, self.settings.column, 0)),
                    ]
                    m.next = "Fetch-Target"

            # The cell's target, from the slot once the host has committed it: the byte it starts in (here
            # addressed), then the next (a packed target may straddle the two).
            with m.State("Fetch-Target"):
                with m.If(~slots.waiting):
                    m.next = "Fetch-Next" if config.pv_packing else "Latch-Target"
                with m.Elif(aborting):
                    m.next = "Finished"

            if config.pv_packing:
                with m.State("Fetch-Next"):
                    m.d.comb += self.target.addr.eq(Cat((byte + 1)[:entry_bits], slots.use))
                    m.d.sync += low_byte.eq(self.target.data)
                    m.next = "Latch-Target"

            with m.State("Latch-Target"):
                m.d.sync += [target.eq(unpacked), level.eq(unpacked), fetch.eq(0), pulses.eq(0)]
                with m.If(~live.per_level):
                    m.next = "Start-Cell"
                with m.Elif(unpacked < config.pv_levels):
                    m.next = "Fetch-Level"
                with m.Else():                   # no such level: the cell fails without a pulse
                    m.d.sync += passed.eq(0)
                    m.next = "Record"

            # The level's entry, one byte per cycle: the byte addressed last cycle arrives now.
            with m.State("Fetch-Level"):
                m.d.sync += fetch.eq(fetch + 1)
                with m.Switch(fetch - 1):
                    for name, (offset, size) in LEVEL_FIELDS.items():
                        register = target if name == "target" else getattr(s, name)
                        for byte in range(size):
                            low = 8 * byte
                            if low >= len(register):
                                continue                 # a narrower DAC ignores the upper byte
                            with m.Case(offset + byte):
                                high = min(len(register), low + 8)
                                m.d.sync += register[low:high].eq(self.level.data[:high - low])
                with m.If(fetch == LEVEL_USED_BYTES):
                    m.next = "Start-Cell"

            with m.State("Start-Cell"):
                m.d.sync += [bl_now.eq(s.bl_start), wl_now.eq(s.wl_start), confirming.eq(0),
                             sl_now.eq(s.sl_reset), wl_last.eq(s.wl_start), fine.eq(0)]
                m.next = "Verify"

            # Sense the cell with the gate fully on and the bit line at the read limit.
            with m.State("Verify"):
                m.d.comb += [self.cell.valid.eq(1), request.op.eq(Op.READ),
                             request.bl_code.eq(read_limit_code(config)), request.wl_code.eq(dac_top),
                             request.width.eq(1)]
                with m.If(self.cell.ready):
                    m.next = "Wait-Verify"

            # Sum 2^reads_log2 senses on top of half their count; the last one closes the verify with the
            # sum shifted: their mean, rounded half up. A build without averaging takes each sense as is.
            with m.State("Wait-Verify"):
                m.d.comb += self.answer.ready.eq(1)
                summed = total + self.answer.payload.code
                with m.If(self.answer.valid):
                    if config.pv_averaging:
                        with m.If(reads == (Const(1, max_reads_log2 + 1) << live.reads_log2) - 1):
                            m.d.sync += [code.eq(summed >> live.reads_log2), total.eq(half), reads.eq(0)]
                            m.next = "Decide"
                        with m.Else():
                            m.d.sync += [total.eq(summed), reads.eq(reads + 1)]
                            m.next = "Verify"
                    else:
                        m.d.sync += code.eq(self.answer.payload.code)
                        m.next = "Decide"
                with m.Elif(self.halt):          # no answer is coming: this cell is neither passed nor failed
                    m.next = "Finished"

            with m.State("Decide"):
                with m.If(verified & (confirming | ~live.confirm)):
                    m.d.sync += passed.eq(1)
                    m.next = "Record"
                with m.Elif(aborting):           # stopped by the host: this cell is neither passed nor failed
                    m.next = "Finished"
                with m.Elif(verified):           # in the window once: read it again before it passes
                    m.d.sync += confirming.eq(1)
                    m.next = "Verify"
                with m.Elif((pulses >= s.max_pulses) | (above & ~live.reset_on_overshoot)):
                    m.d.sync += passed.eq(0)
                    m.next = "Record"
                with m.Else():
                    m.next = "Pulse"

            with m.State("Pulse"):
                m.d.comb += [self.cell.valid.eq(1), request.width.eq(s.pulse_width)]
                with m.If(below):
                    # RADAR's coarse SETs: full top electrode, gate ramp; its fine SETs: the last coarse
                    # gate, top-electrode ramp.
                    m.d.comb += [request.op.eq(Mux(live.form, Op.FORM, Op.SET)),
                                 request.bl_code.eq(Mux(radar, Mux(fine, bl_now, s.bl_stop),
                                                        Mux(ramps_bl, bl_now, s.bl_start))),
                                 request.wl_code.eq(Mux(radar, Mux(fine, wl_last, wl_now),
                                                        Mux(ramps_bl, s.wl_start, wl_now)))]
                with m.Else():
                    m.d.comb += [request.op.eq(Op.RESET), request.sl_code.eq(Mux(radar, sl_now, s.sl_reset)),
                                 request.wl_code.eq(s.wl_stop)]
                with m.If(self.cell.ready):
                    m.d.sync += [pulses.eq(pulses + 1), self.pulses_total.eq(self.pulses_total + 1),
                                 confirming.eq(0)]
                    if config.pv_radar:
                        with m.If(radar):
                            self._radar_ramps(m, live, s, below, fine, bl_now, wl_now, wl_last, sl_now, step)
                    with m.If(~radar):
                        with m.If(below & ~live.cumulative):
                            m.d.sync += [bl_now.eq(step(bl_now, s.bl_step, s.bl_stop)),
                                         wl_now.eq(step(wl_now, s.wl_step, s.wl_stop))]
                        with m.If(~below):           # after a RESET the ramp starts over
                            m.d.sync += [bl_now.eq(s.bl_start), wl_now.eq(s.wl_start)]
                    m.next = "Wait-Pulse"

            with m.State("Wait-Pulse"):
                m.d.comb += self.answer.ready.eq(1)
                with m.If(self.answer.valid):
                    m.next = "Verify"

            with m.State("Record"):
                m.d.comb += [self.pulses.en.eq(1), self.codes.en.eq(1)]
                with m.If(passed):
                    m.d.sync += self.cells_done.eq(self.cells_done + 1)
                    m.next = "Next-Cell"
                with m.Else():
                    m.d.sync += [self.cells_failed.eq(self.cells_failed + 1), log_byte.eq(0)]
                    with m.If(log_entries < config.failed_log_depth):
                        m.next = "Log"
                    with m.Else():
                        m.next = "Next-Cell"

            # One entry, least significant byte first.
            with m.State("Log"):
                m.d.comb += [entry.valid.eq(1), entry.core.eq(live.core), entry.row.eq(row), entry.column.eq(column)]
                m.d.comb += [self.log.en.eq(1), self.log.addr.eq(Cat(log_byte, log_entries)),
                             self.log.data.eq(entry.as_value().word_select(log_byte, 8))]
                m.d.sync += log_byte.eq(log_byte + 1)
                with m.If(log_byte == FAILED_LOG_ENTRY_BYTES - 1):
                    m.d.sync += log_entries.eq(log_entries + 1)
                    m.next = "Next-Cell"

            with m.State("Next-Cell"):
                run_over = aborting | (last_column & last_row)
                # A slot's last entry, or the run's last cell: the slot goes back to the host.
                with m.If(run_over | (slot_entry == config.pv_slot_cells - 1)):
                    m.d.comb += slots.release.eq(1)
                    m.d.sync += [slot_entry.eq(0), bit_at.eq(0)]
                with m.Else():
                    m.d.sync += slot_entry.eq(slot_entry + 1)
                    if config.pv_packing:
                        m.d.sync += bit_at.eq(bit_at + live.target_bits)
                with m.If(run_over):
                    m.next = "Finished"
                with m.Elif(last_column):
                    m.d.sync += [row.eq(row + 1), column.eq(0)]
                    m.next = "Fetch-Target"
                with m.Else():
                    m.d.sync += column.eq(column + 1)
                    m.next = "Fetch-Target"

            with m.State("Finished"):
                m.d.comb += slots.clear.eq(1)
                m.d.sync += self.done.eq(1)
                m.next = "Idle"
        # Busy in every state but Idle, Finished included: busy falls on the edge done rises, so no status
        # byte shows neither.
        m.d.comb += self.busy.eq(~fsm.ongoing("Idle"))
        return m

    @staticmethod
    def _radar_ramps(m, live, s, below, fine, bl_now, wl_now, wl_last, sl_now, step):
        """RADAR's codes after a pulse: a coarse SET steps the gate (and remembers it); the first RESET
        starts the fine phase for good; there a SET steps the top electrode and a RESET the source line,
        and a change of direction starts the other ramp over. Cumulative mode steps nothing."""
        with m.If(below & fine):
            m.d.sync += sl_now.eq(s.sl_reset)
            with m.If(~live.cumulative):
                m.d.sync += bl_now.eq(step(bl_now, s.bl_step, s.bl_stop))
        with m.Elif(below):
            m.d.sync += wl_last.eq(wl_now)
            with m.If(~live.cumulative):
                m.d.sync += wl_now.eq(step(wl_now, s.wl_step, s.wl_stop))
        with m.Else():
            m.d.sync += [fine.eq(1), bl_now.eq(s.bl_start)]
            with m.If(~live.cumulative):
                m.d.sync += sl_now.eq(step(sl_now, live.sl_step, live.sl_stop))
