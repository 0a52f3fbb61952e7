"""cocotb tests of on-chip programming: the whole chip driven through SPI, the Python analog macro on
its analog port through the bridge, scored pulse for pulse against `models.pv`.

Run by tests/test_cocotb_chip_pv.py on Icarus and Verilator.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.task import bridge

from rram_cim.host.programming import Programmer
from rram_cim.host.registers import ChipError, RegisterClient
from rram_cim.models import program_and_verify
from rram_cim.models.macro import AnalogMacro
from rram_cim.host.recipes import HOLDING, level_recipes
from rram_cim.models.pv import averaged_codes
from rram_cim.models.recipes import LEVELS, reference_recipe
from rram_cim.protocol import RECIPE_FIELDS, StatusBit
from rram_cim.sim.analog_bridge import AnalogBridge
from rram_cim.sim.chip_bench import ChipBench, seed_from_env
from rram_cim.sim.cosim_transport import CocotbTransport
from rram_cim.sim.pv_reference import port_pulses, reference_pulses

ROW = 3
RECIPE = dict(algorithm=1, cumulative=0, reset_on_overshoot=1, scope=1, bl_start=133, bl_step=1, bl_stop=160,
              wl_start=90, wl_step=2, wl_stop=165, sl_reset=110, pulse_width=4, setup_cycles=1,
              max_pulses=30, window=2)
#: Every algorithm and option the engine has, each run on a row against the reference (one cocotb test
#: per recipe, `programming_a_row_through_spi_matches_the_reference/name=NAME`).
RECIPES = {
    "igvva": RECIPE,
    "ispva": dict(RECIPE, algorithm=0, bl_start=70, wl_start=150, wl_stop=150),
    "cumulative": dict(RECIPE, cumulative=1, max_pulses=8),
    "no_reset_on_overshoot": dict(RECIPE, reset_on_overshoot=0, wl_step=8),
    "triangular": dict(RECIPE, triangular=1, pulse_width=7, wl_step=3),
    "form": dict(RECIPE, form=1, bl_start=180, bl_step=4, bl_stop=250, wl_start=100, window=4),
    # Verify reads that hold: 4 senses averaged per verify, a confirming verify before a cell passes.
    "averaged_confirmed": dict(RECIPE, reads_log2=2, confirm=1),
    # RADAR: coarse gate ramp at bl_stop, then top-electrode SET and source-line RESET ramps.
    "radar": dict(RECIPE, algorithm=2, wl_step=6, bl_start=110, bl_step=3, bl_stop=160, sl_reset=50, sl_step=8,
                  sl_stop=140),
}
#: A forming run's target: conducting at least (20 - window) ADC codes, i.e. formed.
FORM_TARGET = 20
#: System clock cycles between status polls while the engine runs.
POLL_CYCLES = 200


class ProgrammingBench(ChipBench):
    """The chip with the Python macro on its port, driven as a host drives it: `regs` is the host's
    `RegisterClient` over the cocotb transport (sticky errors raise `ChipError`), run in a bridge thread."""

    def __init__(self, dut, formed: bool = True):
        super().__init__(dut)
        self.seed = seed_from_env()
        self.bridge = AnalogBridge(dut, AnalogMacro(self.config, self.seed, formed=formed))
        self.table = self.model.table
        self.regs = RegisterClient(CocotbTransport(self.spi), self.table)

    def configure(self, recipe: dict, core=0, row=ROW, column=0):
        """The recipe, its scope and the first cell into the P&V registers (blocking: in a bridge thread)."""
        mode = self.table.register("pv_mode")
        self.regs.write("pv_mode", **{f.name: recipe.get(f.name, 0) for f in mode.fields})
        self.regs.write("pv_core", core)
        self.regs.write("pv_row", row)
        self.regs.write("pv_column", column)
        for name in (*RECIPE_FIELDS, "setup_cycles"):
            self.regs.write(f"pv_{name}", recipe[name])
        self.regs.write("pv_verify", reads_log2=recipe.get("reads_log2", 0), confirm=recipe.get("confirm", 0))
        for name in ("sl_step", "sl_stop"):
            self.regs.write(f"pv_{name}", recipe.get(name, 0))

    def start(self, engine: str):
        """CTRL's start bit of `engine` ("pv", "inf", "mvm")."""
        self.regs.write("ctrl", self.table.register("ctrl").field(f"{engine}_start").mask)

    def commit(self):
        """Hand the P&V slot PV_STREAM.fill to the engine (CTRL.pv_commit)."""
        self.regs.write("ctrl", self.table.register("ctrl").field("pv_commit").mask)

    def wait_done(self, limit_polls=2000) -> int:
        """Poll the status byte (SPI traffic while the engine runs) until P&V is done; return the polls."""
        poll_seconds = POLL_CYCLES / self.config.sys_clk_hz
        frames = self.regs.transport.frames
        self.regs.wait_done(StatusBit.PV_DONE, "pv_abort", limit_polls * poll_seconds, poll_seconds, what="P&V")
        return self.regs.transport.frames - frames - 1


def reference(config, seed, targets_row, recipe, row=ROW):
    macro = AnalogMacro(config, seed, formed=not recipe.get("form"))
    targets = np.full((config.rows, config.columns), -1)
    targets[row] = targets_row
    settings = reference_recipe(recipe, config)
    return macro, program_and_verify(macro.cores[0], targets, settings, config)


@cocotb.test()
@cocotb.parametrize(name=[cocotb.Param(name, name) for name in RECIPES])
async def programming_a_row_through_spi_matches_the_reference(dut, name: str):
    recipe = RECIPES[name]
    tb = ProgrammingBench(dut, formed=not recipe.get("form"))
    await tb.reset()
    tb.bridge.start()
    config, regs = tb.config, tb.regs
    rng = np.random.default_rng(tb.seed)
    targets_row = rng.choice(LEVELS, size=config.columns)
    if recipe.get("form"):
        targets_row[:] = FORM_TARGET

    def program_the_row():
        # One row fits slot 0 (PV_SLOT_CELLS cells): write its targets, commit it, start.
        regs.write_window("pv_target", 0, bytes(int(t) for t in targets_row))
        tb.commit()
        tb.configure(recipe)
        tb.start("pv")
        return tb.wait_done()

    polls = await bridge(program_the_row)()

    ref_macro, outcome = reference(config, tb.seed, targets_row, recipe)
    shape = reference_recipe(recipe, config).shape
    log = tb.bridge.pulse_log
    assert len(log) == len(outcome.log) > config.columns, (len(log), len(outcome.log))
    for column in range(config.columns):
        assert port_pulses(log, ROW, column) == reference_pulses(outcome, ROW, column, shape), \
            f"{name}: column {column} (seed {tb.seed})"
    assert np.array_equal(tb.bridge.macro.cores[0].g_us, ref_macro.cores[0].g_us)

    def counters():
        counts = regs.read_window("pv_pulses", 0, config.columns)
        codes = regs.read_window("pv_codes", 0, config.columns)
        return list(counts), list(codes), {name: regs.read(name) for name in
                                           ("pv_cells_done", "pv_cells_failed", "pv_pulses_total", "error")}

    counts, codes, read = await bridge(counters)()
    assert counts == outcome.pulses[ROW].tolist()
    assert codes == outcome.final_code[ROW].tolist()            # the last (averaged, confirming) verify's code
    assert read == {"pv_cells_done": int(outcome.passed[ROW].sum()), "pv_cells_failed": int(outcome.failed[ROW].sum()),
                    "pv_pulses_total": len(outcome.log), "error": 0}
    dut._log.info("%s: row programmed, %d pulses, %d passed, %d failed, %d status polls during the run",
                  name, len(log), outcome.passed[ROW].sum(), outcome.failed[ROW].sum(), polls)


def refused(attempt, error: str, what: str):
    """`attempt()` must be refused with exactly the sticky error `error` (the client clears it)."""
    try:
        attempt()
    except ChipError as refusal:
        assert str(refusal) == f"chip flagged {error}", f"{what}: {refusal}"
    else:
        raise AssertionError(f"{what} was not refused")


@cocotb.test()
async def bad_selection_is_refused_and_abort_stops_the_engine(dut):
    tb = ProgrammingBench(dut)
    await tb.reset()
    tb.bridge.start()
    regs = tb.regs
    window = tb.table.window("pv_target")
    # A slot of targets far above what the recipe's gate ramp reaches: every cell spends its whole budget,
    # so the engine is still in slot 0 when the host looks.
    targets = bytes([230]) * tb.config.pv_slot_cells

    def bad_selection():
        tb.configure(RECIPE, row=tb.config.rows)                 # one past the last row
        refused(lambda: tb.start("pv"), "pv_config", "a start on a row past the last")
        tb.configure(RECIPE, row=tb.config.rows - 2)
        regs.write("pv_rows", 3)                                 # rows that run past the last
        refused(lambda: tb.start("pv"), "pv_config", "a run of rows past the last")
        regs.write("pv_rows", 0)
        refused(lambda: tb.start("pv"), "pv_config", "a run of no rows")
        regs.write("pv_rows", 1)
        regs.write("pv_target_bits", 9)                          # targets are 1-8 bits
        refused(lambda: tb.start("pv"), "pv_config", "9-bit targets")
        regs.write("pv_target_bits", 8)
        assert not regs.status() & StatusBit.BUSY

    await bridge(bad_selection)()
    assert not tb.bridge.pulse_log

    def start_a_core():
        tb.configure(dict(RECIPE, scope=2))                      # the whole core: long enough to abort
        regs.write_window("pv_target", 0, targets)
        tb.commit()                                              # both slots, then the start
        tb.commit()
        tb.start("pv")

    await bridge(start_a_core)()
    await tb.cycles(3000)
    stream = tb.table.register("pv_stream")

    def while_it_runs():
        # What the engine reads is its own while it runs: a recipe write, a slot it owns, a third commit.
        refused(lambda: regs.write("pv_wl_step", 7), "engine_busy", "a recipe write during P&V")
        assert regs.read("pv_wl_step") == RECIPE["wl_step"]
        assert regs.read("pv_stream") == stream.field("owned").mask          # both owned, fill 0, not ready
        refused(tb.commit, "engine_busy", "a commit while both slots are owned")
        assert regs.read("pv_stream") == stream.field("owned").mask

    await bridge(while_it_runs)()
    # The refused read answers zeros: read at the pins, since the client raises before returning them.
    assert await tb.spi.read(window.address, 4) == bytes(4)
    assert await bridge(regs.errors)() == ["engine_busy"]
    await bridge(regs.clear_errors)()

    def abort():
        regs.write("ctrl", tb.table.register("ctrl").field("pv_abort").mask)
        tb.wait_done()
        return regs.read("pv_cells_done") + regs.read("pv_cells_failed")

    finished = await bridge(abort)()
    assert 0 < finished < tb.config.pv_slot_cells
    assert await bridge(regs.read)("pv_stream") == stream.field("ready").mask   # the end freed both slots
    pulses = len(tb.bridge.pulse_log)
    await tb.cycles(2000)
    assert len(tb.bridge.pulse_log) == pulses, "the engine kept pulsing after the abort"
    assert await bridge(regs.read_window)("pv_target", 0, len(targets)) == targets
    assert await bridge(regs.read)("error") == 0


@cocotb.test()
async def reset_mid_programming_leaves_an_idle_chip(dut):
    tb = ProgrammingBench(dut)
    await tb.reset()
    tb.bridge.start()
    regs = tb.regs

    def start_a_core():
        tb.configure(dict(RECIPE, scope=2))
        regs.write_window("pv_target", 0, bytes([230]) * tb.config.pv_slot_cells)   # cells that need pulses
        tb.commit()
        tb.start("pv")

    await bridge(start_a_core)()
    await tb.cycles(4000)
    assert tb.bridge.pulse_log, "nothing was programming when reset came"
    assert await bridge(regs.status)() & StatusBit.BUSY
    await tb.pulse_reset()
    pulses = len(tb.bridge.pulse_log)
    await tb.cycles(3000)
    assert len(tb.bridge.pulse_log) == pulses, "pulses after reset"
    status = await bridge(regs.status)()
    assert not status & (StatusBit.BUSY | StatusBit.PV_DONE | StatusBit.ERROR)

    def after_reset():
        return {name: regs.read(name) for name in ("pv_mode", "pv_pulses_total", "chip_id")}

    assert await bridge(after_reset)() == {"pv_mode": 0, "pv_pulses_total": 0, "chip_id": 0x52C1}


@cocotb.test()
@cocotb.parametrize(recipes=[cocotb.Param({}, "igvva_levels"), cocotb.Param(HOLDING, "holding")])
async def host_programmer_programs_rows_and_reads_them_back(dut, recipes: dict):
    """The host API over the co-simulation transport: per-level recipes (plain, or with averaged and
    confirmed verifies and widened windows), rows of core 1 streamed through the two P&V slots (2 rows:
    one slot; 9 rows: three, the third filled once the engine frees the first), level indices packed 3
    bits each, read back through the sense path with the recipe's averaging; every number equals the
    reference model's."""
    options = recipes
    tb = ProgrammingBench(dut)
    await tb.reset()
    tb.bridge.start()
    config = tb.config
    core, first_row, count = 1, 10, 9 if options else 2
    targets = np.random.default_rng(tb.seed).choice(LEVELS, size=(count, config.columns))
    recipes = level_recipes(config, LEVELS, dict(RECIPE, max_pulses=40), **options)
    programmer = Programmer(tb.regs, config, poll_seconds=2000 / config.sys_clk_hz)
    frames = tb.regs.transport.frames
    result = await bridge(programmer.program)(core, targets, recipes, first_row, True, True)
    assert result.target_bits == 3                       # 8 levels: indices packed 3 bits each

    macro = AnalogMacro(config, tb.seed)
    full = np.full((config.rows, config.columns), -1)
    full[first_row:first_row + count] = targets
    outcome = program_and_verify(macro.cores[core], full, recipes, config)
    chosen = full >= 0
    reads = recipes[LEVELS[0]].verify_reads
    codes = averaged_codes(macro.cores[core], recipes[LEVELS[0]].v_read, chosen, reads, config)
    assert result.verify_reads == reads
    rows = slice(first_row, first_row + count)
    assert np.array_equal(result.pulses, outcome.pulses[rows])
    assert np.array_equal(result.codes, codes[rows])
    assert np.array_equal(tb.bridge.macro.cores[core].g_us, macro.cores[core].g_us)
    assert result.cells_done == int(outcome.passed.sum()) and result.cells_failed == int(outcome.failed.sum())
    assert result.failed_cells == [(core, int(r), int(c)) for r, c in zip(*np.nonzero(outcome.failed))]
    assert result.pulses_total == len(outcome.log) > 2 * config.columns
    # A re-read lands within read noise of the verified level: 2 % of G, up to ~2.3 uS (4-5 codes) at the
    # top level, wider than the +-1 uS window, so only some re-reads fall inside it; a cell that ran out
    # of pulses may sit anywhere. A mix-up of cells would be off by tens of codes for most of them.
    error = np.abs(result.codes - targets)
    assert np.median(error) <= 4 and np.corrcoef(result.codes.ravel(), targets.ravel())[0, 1] > 0.9, error
    if options:                                  # the verify reads that hold: most read back in window
        assert result.in_window.mean() >= 0.9, result.in_window.mean()
    dut._log.info("host programmed %d rows: %d pulses, %d failed, %.0f %% in window on read-back, %d frames",
                  count, result.pulses_total, result.cells_failed, 100 * result.in_window.mean(),
                  tb.regs.transport.frames - frames)


@cocotb.test()
async def a_silent_macro_ends_either_engine_through_the_watchdog(dut):
    """The bridge not started: no sense and no neuron strobe is ever answered. Each engine's run (P&V,
    inference, MVM) ends
    when the watchdog expires, with ERROR.analog_timeout, and the chip runs again without a reset once
    the macro answers."""
    tb = ProgrammingBench(dut)
    await tb.reset()
    regs = tb.regs

    def configure_both():
        regs.write("watchdog", 0)                                # (0 + 1) * 4096 cycles
        tb.configure(dict(RECIPE, max_pulses=0))                 # verify only: a sense first
        tb.commit()                                              # slot 0: the row's cells
        for name, value in [("core0_thresh_pos", 7), ("core0_thresh_neg", 7), ("core1_thresh_pos", 7),
                            ("core1_thresh_neg", 7), ("neuron_timesteps", 3), ("neuron_v_read", 6),
                            ("mvm_bits", 0x11), ("mvm_v_read", 6), ("mvm_threshold", 7)]:
            regs.write(name, value)

    await bridge(configure_both)()
    for engine, done in {"pv": StatusBit.PV_DONE, "inf": StatusBit.INFER_DONE, "mvm": StatusBit.MVM_DONE}.items():
        await bridge(tb.start)(engine)
        await tb.cycles(2000)
        assert await bridge(regs.status)() & StatusBit.BUSY, f"{engine}: ended before the watchdog"
        await tb.cycles(2500)
        status = await bridge(regs.status)()
        assert status & (StatusBit.BUSY | done | StatusBit.ERROR) == done | StatusBit.ERROR, \
            f"{engine}: status {status:#04x}"
        assert await bridge(regs.errors)() == ["analog_timeout"], engine
        await bridge(regs.clear_errors)()
    tb.bridge.start()

    def program_a_row():
        tb.commit()
        tb.start("pv")
        tb.wait_done()
        return regs.read("pv_cells_done") + regs.read("pv_cells_failed"), regs.read("error")

    assert await bridge(program_a_row)() == (tb.config.columns, 0)
