"""The P&V engine in Amaranth's simulator, driving the real row/column drivers into the Python analog
macro, scored pulse for pulse against the reference algorithm of `models.pv`."""

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from rram_cim.config import REFERENCE
from rram_cim.models import program_and_verify
from rram_cim.models.macro import AnalogMacro
from rram_cim.protocol import FAILED_LOG_ENTRY_BYTES, PV_SLOTS, Op, pack_targets, unpack_failed_log
from rram_cim.rtl.cell_driver import CellDriver
from rram_cim.rtl.pv_engine import Algorithm, PVEngine, Scope
from rram_cim.models.recipes import LEVELS
from rram_cim.models.recipes import reference_recipe as shared_reference_recipe
from rram_cim.sim.amaranth_responder import port_responder_process
from rram_cim.sim.port_responder import PortResponder
from rram_cim.sim.pv_reference import port_pulses, reference_pulses

CONFIG = REFERENCE
SENSE_LATENCY = 4
SEED = 11


class Harness(Elaboratable):
    def __init__(self, config=CONFIG):
        self.engine = PVEngine(config)
        self.driver = CellDriver(config)

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = self.engine
        m.submodules.driver = self.driver
        wiring.connect(m, self.engine.cell, self.driver.request)
        wiring.connect(m, self.driver.response, self.engine.answer)
        return m


def run_cells(config, settings) -> list[tuple[int, int]]:
    """(row, column) of the cells a run selects, in the engine's order (row-major)."""
    scope = settings["scope"]
    if scope == Scope.CELL:
        return [(settings["row"], settings["column"])]
    rows = range(config.rows) if scope == Scope.CORE else range(settings["row"], settings["row"] + settings["rows"])
    return [(row, column) for row in rows for column in range(config.columns)]


def run_engine(targets_core, settings: dict, macro: AnalogMacro, abort_after_cycles=None, level_table=b"",
               config=CONFIG, commit_delay=0):
    """Program with the RTL, streaming the targets through the two slots as a host would (the first two
    committed before the start, each later one `commit_delay` cycles after its slot comes free); return
    (pulse log from the port, counts by cell index row * columns + column, log bytes, counters)."""
    settings = dict(rows=1, target_bits=8) | settings
    h = Harness(config)
    engine, port = h.engine, h.driver.port
    counts, log_bytes = {}, {}
    responder = PortResponder(macro, sense_latency=SENSE_LATENCY)
    cells = run_cells(config, settings)
    size, bits = config.pv_slot_cells, settings["target_bits"]
    chunks = [cells[at:at + size] for at in range(0, len(cells), size)]
    slot_memory = bytearray(PV_SLOTS * size)
    holds = {}                      # slot -> the chunk it holds
    result = {}

    codes = result["codes"] = {}

    async def memories(ctx):
        async for _, _, addr, level_addr, c_en, c_addr, c_data, l_en, l_addr, l_data, code in ctx.tick().sample(
                engine.target.addr, engine.level.addr, engine.pulses.en, engine.pulses.addr, engine.pulses.data,
                engine.log.en, engine.log.addr, engine.log.data, engine.codes.data):
            ctx.set(engine.target.data, slot_memory[addr % len(slot_memory)])
            ctx.set(engine.level.data, level_table[level_addr] if level_addr < len(level_table) else 0)
            if c_en:
                row, column = chunks[holds[c_addr // size]][c_addr % size]
                counts[row * config.columns + column] = c_data
                codes[row * config.columns + column] = code
            if l_en:
                log_bytes[l_addr] = l_data

    async def commit(ctx, chunk):
        slot = ctx.get(engine.fill)
        packed = pack_targets([targets_core[row, column] for row, column in chunks[chunk]], bits)
        slot_memory[slot * size:slot * size + len(packed)] = packed
        holds[slot] = chunk
        ctx.set(engine.commit, 1)
        await ctx.tick()
        ctx.set(engine.commit, 0)

    async def bench(ctx):
        for name, value in settings.items():
            ctx.set(getattr(engine.settings, name), value)
        committed = 0
        for chunk in range(min(PV_SLOTS, len(chunks))):
            await commit(ctx, chunk)
            committed += 1
        ctx.set(engine.start, 1)
        await ctx.tick()
        ctx.set(engine.start, 0)
        cycles = waited = 0
        while not ctx.get(engine.done):
            if committed < len(chunks) and ctx.get(engine.ready):
                waited += 1
                if waited > commit_delay:
                    await commit(ctx, committed)
                    committed, waited = committed + 1, 0
                    continue
            await ctx.tick()
            cycles += 1
            if abort_after_cycles is not None and cycles == abort_after_cycles:
                ctx.set(engine.stop, 1)
            assert cycles < 400_000, "engine hung"
        result.update(cells_done=ctx.get(engine.cells_done), cells_failed=ctx.get(engine.cells_failed),
                      pulses_total=ctx.get(engine.pulses_total), busy=ctx.get(engine.busy), cycles=cycles,
                      owned_after=ctx.get(engine.owned), fill_after=ctx.get(engine.fill))

    sim = Simulator(h)
    sim.add_clock(1 / CONFIG.sys_clk_hz)
    sim.add_process(memories)
    sim.add_process(port_responder_process(responder, port))
    sim.add_testbench(bench)
    sim.run()
    return responder.pulse_log, counts, log_bytes, result


#: RADAR: coarse gate steps of 60 mV at a 2.4 V top electrode, then 1.65-2.4 V top-electrode SET ramps
#: (45 mV steps) and source-line RESET ramps from 0.75 V (below V_reset: the ramp must climb) to 2.1 V
#: (120 mV steps) at the last coarse gate.
RADAR = dict(algorithm=Algorithm.RADAR, wl_step=6, bl_start=110, bl_step=3, bl_stop=160, sl_reset=50, sl_step=8,
             sl_stop=140)


def recipe(**changes):
    base = dict(algorithm=Algorithm.IGVVA, cumulative=0, reset_on_overshoot=1, scope=Scope.ROW, core=0, row=5,
                column=0, bl_start=133, bl_step=1, bl_stop=160, wl_start=90, wl_step=2, wl_stop=165, sl_reset=110,
                pulse_width=4, setup_cycles=1, max_pulses=30, window=2)
    return base | changes


def reference_recipe(settings):
    return shared_reference_recipe(settings, CONFIG)


def reference(settings, targets_core, seed=SEED, formed=True):
    macro = AnalogMacro(CONFIG, seed, formed=formed)
    rows = np.arange(CONFIG.rows)[:, None]
    columns = np.arange(CONFIG.columns)[None, :]
    scope = settings["scope"]
    chosen = np.ones(targets_core.shape, bool)
    if scope == Scope.ROW:
        chosen &= (rows >= settings["row"]) & (rows < settings["row"] + settings.get("rows", 1))
    if scope == Scope.CELL:
        chosen &= rows == settings["row"]
    if scope == Scope.CELL:
        chosen &= columns == settings["column"]
    outcome = program_and_verify(macro.cores[settings["core"]], np.where(chosen, targets_core, -1),
                                 reference_recipe(settings), CONFIG)
    return macro, outcome, chosen


def targets(seed=0):
    rng = np.random.default_rng(seed)
    return rng.choice(LEVELS, size=(CONFIG.rows, CONFIG.columns))


@pytest.mark.parametrize("changes", [
    dict(),
    dict(algorithm=Algorithm.ISPVA, bl_start=70, wl_start=150, wl_stop=150),
    dict(cumulative=1, max_pulses=6),
    dict(reset_on_overshoot=0, wl_step=8),
    dict(scope=Scope.CELL, column=17),
    dict(triangular=1, pulse_width=7, wl_step=3),
    dict(algorithm=Algorithm.ISPVA, triangular=1, bl_start=70, wl_start=150, wl_stop=150, pulse_width=8),
    dict(reads_log2=2),
    dict(confirm=1),
    dict(reads_log2=3, confirm=1, cumulative=1, max_pulses=8),
    dict(reads_log2=1, confirm=1, reset_on_overshoot=0, wl_step=8),
    RADAR,
    dict(RADAR, cumulative=1, max_pulses=8),
    dict(RADAR, sl_reset=60, sl_step=10, sl_stop=120, wl_step=12, triangular=1, pulse_width=5, reads_log2=1),
])
def test_rtl_pulse_sequence_equals_the_reference(changes):
    settings = recipe(**changes)
    core_targets = targets()
    macro = AnalogMacro(CONFIG, SEED)
    pulse_log, counts, log_bytes, counters = run_engine(core_targets, settings, macro)
    ref_macro, outcome, chosen = reference(settings, core_targets)

    assert len(pulse_log) >= int(chosen.sum()) > 0          # the comparison is not vacuous
    shape = reference_recipe(settings).shape
    for row, column in zip(*np.nonzero(chosen)):
        ours = port_pulses(pulse_log, row, column)
        assert ours == reference_pulses(outcome, row, column, shape), f"cell ({row}, {column})"
        assert counts[row * CONFIG.columns + column] == outcome.pulses[row, column]
        assert counters["codes"][row * CONFIG.columns + column] == outcome.final_code[row, column]
    assert np.array_equal(macro.cores[0].g_us, ref_macro.cores[0].g_us)
    assert counters["cells_done"] == int(outcome.passed[chosen].sum())
    assert counters["cells_failed"] == int(outcome.failed[chosen].sum())
    assert counters["pulses_total"] == len(pulse_log) == len(outcome.log)
    assert not counters["busy"]


def test_a_build_without_averaging_senses_once_per_verify_whatever_reads_log2_says():
    from rram_cim.config import REFERENCE_LITE
    settings = recipe(reads_log2=3, confirm=1)
    core_targets = targets()
    macro = AnalogMacro(CONFIG, SEED)
    pulse_log, counts, _, counters = run_engine(core_targets, settings, macro, config=REFERENCE_LITE)
    ref_macro, outcome, chosen = reference(dict(settings, reads_log2=0), core_targets)
    assert [counts[5 * CONFIG.columns + c] for c in range(CONFIG.columns)] == outcome.pulses[5].tolist()
    assert counters["pulses_total"] == len(pulse_log) == len(outcome.log)
    assert np.array_equal(macro.cores[0].g_us, ref_macro.cores[0].g_us)


def test_forming_run_forms_every_cell_of_a_row_like_the_reference():
    # Pristine cells: the top electrode ramps from below the forming voltage (~3 V) until each cell
    # conducts at least target - window; the gate at wl_start limits the formed conductance.
    settings = recipe(form=1, bl_start=180, bl_step=4, bl_stop=250, wl_start=100, max_pulses=30, window=4)
    core_targets = np.full((CONFIG.rows, CONFIG.columns), 20)
    macro = AnalogMacro(CONFIG, SEED, formed=False)
    pulse_log, counts, _, counters = run_engine(core_targets, settings, macro)
    ref_macro, outcome, chosen = reference(settings, core_targets, formed=False)
    assert all(entry[0] == Op.FORM for entry in pulse_log)
    assert counters["cells_done"] == CONFIG.columns == int(outcome.passed[chosen].sum())
    assert macro.cores[0].formed[settings["row"]].all() and not macro.cores[0].formed[0].any()
    for column in range(CONFIG.columns):
        assert port_pulses(pulse_log, settings["row"], column) == reference_pulses(
            outcome, settings["row"], column, reference_recipe(settings).shape)
    assert np.array_equal(macro.cores[0].g_us, ref_macro.cores[0].g_us)
    assert np.mean([counts[settings["row"] * CONFIG.columns + c] for c in range(CONFIG.columns)]) > 2


def level_table():
    """Eight levels, each its own recipe (EMBER-style): the gate ramp starts near the level's compliance,
    higher levels get wider pulses, a bigger budget and a wider window."""
    levels = []
    for index, code in enumerate(LEVELS):
        levels.append(dict(target=code, pulse_width=3 + index % 3, max_pulses=12 + 2 * index, window=1 + index // 3,
                           bl_start=133, bl_step=0, bl_stop=133, wl_start=80 + 8 * index, wl_step=1 + index % 2,
                           wl_stop=170, sl_reset=105 + index))
    return levels


def test_per_level_recipes_from_the_level_table_match_the_reference():
    from rram_cim.protocol import pack_level
    from rram_cim.models.recipes import reference_levels
    levels = level_table()
    table = b"".join(pack_level(entry) for entry in levels)
    settings = recipe(per_level=1, scope=Scope.ROW, row=9,
                      # The per-level fields of the registers must not matter: make them useless.
                      bl_start=0, bl_step=0, bl_stop=0, wl_start=0, wl_step=0, wl_stop=0, pulse_width=1,
                      max_pulses=1, window=0)
    rng = np.random.default_rng(4)
    indices = rng.integers(0, len(levels), size=(CONFIG.rows, CONFIG.columns))
    indices[9, 5] = CONFIG.pv_levels + 3                      # no such level: fails without a pulse
    macro = AnalogMacro(CONFIG, SEED)
    pulse_log, counts, log_bytes, counters = run_engine(indices, settings, macro, level_table=table)

    codes = np.array([entry["target"] for entry in levels])[np.minimum(indices, len(levels) - 1)]
    targets_core = np.full(indices.shape, -1)
    targets_core[9] = codes[9]
    targets_core[9, 5] = -1
    ref_macro = AnalogMacro(CONFIG, SEED)
    outcome = program_and_verify(ref_macro.cores[0], targets_core, reference_levels(settings, levels, CONFIG), CONFIG)
    assert {len(p[4]) for p in pulse_log} == {3, 4, 5}       # the widths really differ per level
    for column in range(CONFIG.columns):
        assert port_pulses(pulse_log, 9, column) == reference_pulses(outcome, 9, column, reference_recipe(settings).shape)
        expected = 0 if column == 5 else outcome.pulses[9, column]
        assert counts[9 * CONFIG.columns + column] == expected
    assert np.array_equal(macro.cores[0].g_us, ref_macro.cores[0].g_us)
    assert counters["cells_done"] == int(outcome.passed[9].sum())
    assert counters["cells_failed"] == int(outcome.failed[9].sum()) + 1
    first_entry = unpack_failed_log(bytes(log_bytes[b] for b in range(FAILED_LOG_ENTRY_BYTES)))
    failed_columns = {c for c in range(CONFIG.columns) if outcome.failed[9, c]} | {5}
    assert first_entry == [(0, 9, min(failed_columns))]


def test_cells_that_never_verify_are_logged_and_skipped():
    from rram_cim.models import DeviceParams
    settings = recipe(max_pulses=5)
    core_targets = targets()
    macro = AnalogMacro(CONFIG, SEED, params=DeviceParams(stuck_low_rate=0.2))
    stuck = macro.cores[0].stuck[5] != 0
    _, counts, log_bytes, counters = run_engine(core_targets, settings, macro)
    assert counters["cells_failed"] >= stuck.sum() > 0
    written = min(counters["cells_failed"], CONFIG.failed_log_depth)
    entries = unpack_failed_log(bytes(log_bytes[b] for b in range(written * FAILED_LOG_ENTRY_BYTES)))
    assert len(entries) == written                          # every written entry is marked valid
    assert {(5, c) for c in np.nonzero(stuck)[0]} <= {(row, column) for _, row, column in entries}
    assert all(counts[5 * CONFIG.columns + c] == 5 for c in np.nonzero(stuck)[0])


def test_abort_stops_after_the_current_cell():
    settings = recipe(scope=Scope.CORE)
    pulse_log, counts, _, counters = run_engine(targets(), settings, AnalogMacro(CONFIG, SEED),
                                                abort_after_cycles=3000)
    finished = counters["cells_done"] + counters["cells_failed"]
    assert 0 < finished < 20
    assert len(counts) == finished


def test_running_again_after_relaxation_refreshes_only_the_cells_that_drifted_out():
    # Refresh: a second run re-reads every cell and pulses only those that relaxed out of their window.
    settings = recipe(max_pulses=40)
    core_targets = targets(3)
    macro = AnalogMacro(CONFIG, SEED)
    first_log, _, _, first = run_engine(core_targets, settings, macro)
    ref_macro, _, chosen = reference(settings, core_targets)
    for array in (macro.cores[0], ref_macro.cores[0]):
        array.relax(86400)
    second_log, counts, _, second = run_engine(core_targets, settings, macro)
    ref_outcome = program_and_verify(ref_macro.cores[0], np.where(chosen, core_targets, -1),
                                     reference_recipe(settings), CONFIG)
    refreshed = [c for c in range(CONFIG.columns) if counts[settings["row"] * CONFIG.columns + c] > 0]
    assert 0 < len(refreshed) < CONFIG.columns
    assert len(second_log) < len(first_log)
    assert [counts[settings["row"] * CONFIG.columns + c] for c in range(CONFIG.columns)] == \
        ref_outcome.pulses[settings["row"]].tolist()
    assert np.array_equal(macro.cores[0].g_us, ref_macro.cores[0].g_us)


SMALL_SLOTS = REFERENCE.replace(pv_slot_cells=32)


def test_rows_streamed_through_small_slots_packed_3_bits_with_slow_commits_equal_the_reference():
    """Three rows (192 cells) through two 32-cell slots: six slots in turn, each later one committed only
    20,000 cycles after it came free, so the engine waits at every slot; level indices packed 3 bits each
    (targets straddle bytes). Every cell's pulses, pulse count and verify code equal the reference's."""
    from rram_cim.protocol import pack_level
    from rram_cim.models.recipes import reference_levels
    levels = level_table()
    table = b"".join(pack_level(entry) for entry in levels)
    settings = recipe(per_level=1, scope=Scope.ROW, row=4, rows=3, target_bits=3)
    indices = np.random.default_rng(7).integers(0, len(levels), size=(CONFIG.rows, CONFIG.columns))
    macro = AnalogMacro(CONFIG, SEED)
    delay = 20_000
    pulse_log, counts, _, counters = run_engine(indices, settings, macro, level_table=table, config=SMALL_SLOTS,
                                                commit_delay=delay)
    codes = np.array([entry["target"] for entry in levels])[indices]
    chosen = np.zeros(indices.shape, bool)
    chosen[4:7] = True
    ref_macro = AnalogMacro(CONFIG, SEED)
    outcome = program_and_verify(ref_macro.cores[0], np.where(chosen, codes, -1),
                                 reference_levels(settings, levels, CONFIG), CONFIG)
    assert counters["cycles"] > 4 * delay                     # it waited for the four late slots
    for row, column in zip(*np.nonzero(chosen)):
        assert port_pulses(pulse_log, row, column) == reference_pulses(
            outcome, row, column, reference_recipe(settings).shape), f"cell ({row}, {column})"
        assert counts[row * CONFIG.columns + column] == outcome.pulses[row, column]
        assert counters["codes"][row * CONFIG.columns + column] == outcome.final_code[row, column]
    assert len(counts) == int(chosen.sum()) == counters["cells_done"] + counters["cells_failed"]
    assert np.array_equal(macro.cores[0].g_us, ref_macro.cores[0].g_us)
    assert (counters["owned_after"], counters["fill_after"]) == (0, 0)        # the run's end frees both slots


def test_an_engine_waiting_for_a_slot_that_never_comes_ends_at_abort():
    """Six rows through 32-cell slots, but the host commits only the first two: the engine programs those
    64 cells, waits (busy, no pulse), and an abort ends the run there with both slots free."""
    settings = recipe(rows=6)
    pulse_log, counts, _, counters = run_engine(targets(), settings, AnalogMacro(CONFIG, SEED), config=SMALL_SLOTS,
                                                commit_delay=10**9, abort_after_cycles=60_000)
    assert counters["cells_done"] + counters["cells_failed"] == 2 * SMALL_SLOTS.pv_slot_cells == len(counts)
    assert set(counts) == {5 * CONFIG.columns + column for column in range(CONFIG.columns)}
    assert (counters["owned_after"], counters["fill_after"], counters["busy"]) == (0, 0, 0)
