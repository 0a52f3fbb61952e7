"""cocotb tests of on-chip programming: the whole chip driven through SPI, the Python analog macro on
its analog port through the bridge, scored pulse for pulse against `models.pv`.

Run by tests/test_cocotb_chip_pv.py on Icarus and Verilator.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np

from ..models import program_and_verify
from ..models.macro import AnalogMacro
from ..models.recipes import LEVELS, reference_recipe
from ..protocol import RECIPE_FIELDS, StatusBit
from .analog_bridge import AnalogBridge
from .chip_bench import ChipBench
from .pv_reference import port_pulses, reference_pulses

ROW = 3
RECIPE = dict(algorithm=1, cumulative=0, reset_on_overshoot=1, scope=1, bl_start=133, bl_step=1, bl_stop=160,
              wl_start=90, wl_step=2, wl_stop=165, sl_reset=110, pulse_width=4, setup_cycles=1,
              max_pulses=30, window=2)
#: Every algorithm and option the engine has, each run on a row against the reference
#: (RRAM_CIM_PV_RECIPE picks one; tests/test_cocotb_chip_pv.py runs them all on both simulators).
RECIPES = {
    "igvva": RECIPE,
    "ispva": dict(RECIPE, algorithm=0, bl_start=70, wl_start=150, wl_stop=150),
    "cumulative": dict(RECIPE, cumulative=1, max_pulses=8),
    "no_reset_on_overshoot": dict(RECIPE, reset_on_overshoot=0, wl_step=8),
    "triangular": dict(RECIPE, triangular=1, pulse_width=7, wl_step=3),
    "form": dict(RECIPE, form=1, bl_start=180, bl_step=4, bl_stop=250, wl_start=100, window=4),
}
#: A forming run's target: conducting at least (20 - window) ADC codes, i.e. formed.
FORM_TARGET = 20


class ProgrammingBench(ChipBench):
    def __init__(self, dut, formed: bool = True):
        super().__init__(dut)
        self.seed = int(os.environ.get("RRAM_CIM_SEED", cocotb.RANDOM_SEED)) % (1 << 32)
        self.bridge = AnalogBridge(dut, AnalogMacro(self.config, self.seed, formed=formed))
        self.table = self.model.table

    async def write(self, name: str, value: int):
        register = self.table.register(name)
        reply = await self.spi.write(register.address, value.to_bytes(register.size, "little"))
        return reply

    async def read(self, name: str) -> int:
        register = self.table.register(name)
        return int.from_bytes(await self.spi.read(register.address, register.size), "little")

    async def configure(self, recipe: dict, core=0, row=ROW, column=0):
        mode = self.table.register("pv_mode")
        await self.write("pv_mode", mode.pack(**{f.name: recipe.get(f.name, 0) for f in mode.fields}))
        await self.write("pv_core", core)
        await self.write("pv_row", row)
        await self.write("pv_column", column)
        for name in (*RECIPE_FIELDS, "setup_cycles"):
            await self.write(f"pv_{name}", recipe[name])

    async def wait_done(self, limit_frames=2000) -> int:
        """Poll the status byte (SPI traffic while the engine runs) until P&V is done."""
        for polls in range(limit_frames):
            status = await self.spi.status()
            if status & StatusBit.PV_DONE and not status & StatusBit.BUSY:
                return polls
            await self.cycles(200)
        raise AssertionError("P&V never finished")


def reference(config, seed, targets_row, recipe, row=ROW):
    macro = AnalogMacro(config, seed, formed=not recipe.get("form"))
    targets = np.full((config.rows, config.columns), -1)
    targets[row] = targets_row
    settings = reference_recipe(recipe, config)
    return macro, program_and_verify(macro.cores[0], targets, settings, config)


@cocotb.test()
async def programming_a_row_through_spi_matches_the_reference(dut):
    name = os.environ.get("RRAM_CIM_PV_RECIPE", "igvva")
    recipe = RECIPES[name]
    tb = ProgrammingBench(dut, formed=not recipe.get("form"))
    await tb.reset()
    tb.bridge.start()
    config = tb.config
    rng = np.random.default_rng(tb.seed)
    targets_row = rng.choice(LEVELS, size=config.columns)
    if recipe.get("form"):
        targets_row[:] = FORM_TARGET
    window = tb.table.window("pv_target")
    await tb.spi.write(window.address + ROW * config.columns, bytes(int(t) for t in targets_row))
    await tb.configure(recipe)
    await tb.write("ctrl", 1)                                   # pv_start
    polls = await tb.wait_done()

    ref_macro, outcome = reference(config, tb.seed, targets_row, recipe)
    shape = reference_recipe(recipe, config).shape
    log = tb.bridge.pulse_log
    assert len(log) == len(outcome.log) > config.columns, (len(log), len(outcome.log))
    for column in range(config.columns):
        assert port_pulses(log, ROW, column) == reference_pulses(outcome, ROW, column, shape), \
            f"{name}: column {column} (seed {tb.seed})"
    assert np.array_equal(tb.bridge.macro.cores[0].g_us, ref_macro.cores[0].g_us)

    counts = await tb.spi.read(tb.table.window("pv_pulses").address + ROW * config.columns, config.columns)
    assert list(counts) == outcome.pulses[ROW].tolist()
    assert await tb.read("pv_cells_done") == int(outcome.passed[ROW].sum())
    assert await tb.read("pv_cells_failed") == int(outcome.failed[ROW].sum())
    assert await tb.read("pv_pulses_total") == len(outcome.log)
    assert await tb.read("error") == 0
    dut._log.info("%s: row programmed, %d pulses, %d passed, %d failed, %d status polls during the run",
                  name, len(log), outcome.passed[ROW].sum(), outcome.failed[ROW].sum(), polls)


@cocotb.test()
async def bad_selection_is_refused_and_abort_stops_the_engine(dut):
    tb = ProgrammingBench(dut)
    await tb.reset()
    tb.bridge.start()
    await tb.configure(RECIPE, row=tb.config.rows)              # one past the last row
    await tb.write("ctrl", 1)
    await tb.cycles(10)
    error = await tb.read("error")
    assert error == tb.table.register("error").field("pv_config").mask
    assert not tb.bridge.pulse_log and not (await tb.spi.status()) & StatusBit.BUSY
    await tb.write("error", 0xFF)

    await tb.configure(dict(RECIPE, scope=2))                   # the whole core: long enough to abort
    window = tb.table.window("pv_target")
    targets = bytes([40, 41, 42, 43])
    await tb.spi.write(window.address, targets)
    await tb.write("ctrl", 1)
    await tb.cycles(3000)
    # What the engine reads is its own while it runs: a recipe write and a target read are refused.
    busy = tb.table.register("error").field("engine_busy").mask
    await tb.write("pv_wl_step", 7)
    assert await tb.read("error") == busy and await tb.read("pv_wl_step") == RECIPE["wl_step"]
    await tb.write("error", 0xFFFF)
    assert await tb.spi.read(window.address, 4) == bytes(4) and await tb.read("error") == busy
    await tb.write("error", 0xFFFF)
    await tb.write("ctrl", 2)                                   # pv_abort
    await tb.wait_done()
    finished = await tb.read("pv_cells_done") + await tb.read("pv_cells_failed")
    assert 0 < finished < tb.config.cells_per_core
    pulses = len(tb.bridge.pulse_log)
    await tb.cycles(2000)
    assert len(tb.bridge.pulse_log) == pulses, "the engine kept pulsing after the abort"
    assert await tb.spi.read(window.address, 4) == targets and await tb.read("error") == 0


@cocotb.test()
async def reset_mid_programming_leaves_an_idle_chip(dut):
    tb = ProgrammingBench(dut)
    await tb.reset()
    tb.bridge.start()
    await tb.configure(dict(RECIPE, scope=2))
    await tb.write("ctrl", 1)
    await tb.cycles(4000)
    assert (await tb.spi.status()) & StatusBit.BUSY
    await tb.pulse_reset()
    pulses = len(tb.bridge.pulse_log)
    await tb.cycles(3000)
    assert len(tb.bridge.pulse_log) == pulses, "pulses after reset"
    status = await tb.spi.status()
    assert not status & (StatusBit.BUSY | StatusBit.PV_DONE | StatusBit.ERROR)
    assert await tb.read("pv_mode") == 0 and await tb.read("pv_pulses_total") == 0
    assert await tb.read("chip_id") == 0x52C1


@cocotb.test()
async def host_programmer_programs_rows_and_reads_them_back(dut):
    """The host API over the co-simulation transport: per-level recipes, two rows of core 1, read back
    through the sense path; every number equals the reference model's."""
    from cocotb.task import bridge

    from ..host.programming import Programmer
    from ..host.registers import RegisterClient
    from ..models.pv import adc_codes, igvva_level_recipes
    from .cosim_transport import CocotbTransport

    tb = ProgrammingBench(dut)
    await tb.reset()
    tb.bridge.start()
    config = tb.config
    core, first_row = 1, 10
    targets = np.random.default_rng(tb.seed).choice(LEVELS, size=(2, config.columns))
    recipes = igvva_level_recipes(LEVELS, reference_recipe(dict(RECIPE, max_pulses=40), config), config)
    programmer = Programmer(RegisterClient(CocotbTransport(tb.spi), tb.table), config,
                            poll_seconds=2000 / config.sys_clk_hz)
    result = await bridge(programmer.program)(core, targets, recipes, first_row)

    macro = AnalogMacro(config, tb.seed)
    full = np.full((config.rows, config.columns), -1)
    full[first_row:first_row + 2] = targets
    outcome = program_and_verify(macro.cores[core], full, recipes, config)
    chosen = full >= 0
    codes = adc_codes(macro.cores[core].read(recipes[LEVELS[0]].v_read, chosen), config)
    rows = slice(first_row, first_row + 2)
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
    dut._log.info("host programmed 2 rows: %d pulses, %d failed, %.0f %% in window on read-back",
                  result.pulses_total, result.cells_failed, 100 * result.in_window.mean())


@cocotb.test()
async def a_silent_macro_ends_either_engine_through_the_watchdog(dut):
    """The bridge not started: no sense and no neuron strobe is ever answered. Each engine's run ends
    when the watchdog expires, with ERROR.analog_timeout, and the chip runs again without a reset once
    the macro answers."""
    tb = ProgrammingBench(dut)
    await tb.reset()
    errors = tb.table.register("error")
    timeout = errors.field("analog_timeout").mask
    await tb.write("watchdog", 0)                                # (0 + 1) * 4096 cycles
    await tb.configure(dict(RECIPE, max_pulses=0))               # verify only: a sense first
    starts = {"pv": (1, StatusBit.PV_DONE), "inference": (4, StatusBit.INFER_DONE)}
    for name, value in [("neuron_thresh_pos", 7), ("neuron_thresh_neg", 7), ("neuron_timesteps", 3),
                        ("neuron_v_read", 6)]:
        await tb.write(name, value)
    for engine, (start, done) in starts.items():
        await tb.write("ctrl", start)
        await tb.cycles(2000)
        assert (await tb.spi.status()) & StatusBit.BUSY, f"{engine}: ended before the watchdog"
        await tb.cycles(2500)
        status = await tb.spi.status()
        assert status & (StatusBit.BUSY | done | StatusBit.ERROR) == done | StatusBit.ERROR, \
            f"{engine}: status {status:#04x}"
        assert await tb.read("error") == timeout, engine
        await tb.write("error", timeout)
    tb.bridge.start()
    await tb.write("ctrl", 1)
    await tb.wait_done()
    assert await tb.read("pv_cells_done") + await tb.read("pv_cells_failed") == tb.config.columns
    assert await tb.read("error") == 0
