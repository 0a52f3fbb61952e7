"""Programming a core's conductances through the chip's own P&V engine, over any SPI frame transport.

    programmer = Programmer(RegisterClient(transport, TABLE), config)
    result = programmer.program(core=0, targets=codes, recipes=settings)   # one PVSettings or {code: PVSettings}
    result.pulses, result.codes, result.failed_cells, result.conductance_us

The host writes the targets (and, for per-level recipes, the level table), sets the recipe registers,
starts the engine, polls the status byte until it is done, and reads back per-cell pulse counts, the
failed-cell log and the counters; then a verify-only run (max_pulses = 0) reads every cell through the
sense path, averaging as many senses per cell as the recipe's verify does, so the conductances reported
are what the chip's own verify sees. Bad input raises before anything
is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..config import ChipConfig
from ..models.device import Shape
from ..models.pv import VERIFY_READS, PVSettings, check_level_recipes
from ..protocol import (DAC_FIELDS, FAILED_LOG_ENTRY_BYTES, RECIPE_FIELDS, Scope, StatusBit, pack_level,
                        unpack_failed_log)
from .registers import ChipError, RegisterClient, check_identity, check_int, check_seconds

__all__ = ["Programmer", "ProgramResult", "ProgrammingError", "check_request", "check_selection", "check_reads",
           "cell_windows"]

#: Bytes per window frame: long enough to amortize the frame header, short enough to keep one
#: co-simulated SPI frame under a second of wall time.
CHUNK = 1024


class ProgrammingError(ValueError):
    """A programming request the chip cannot carry out (wrong shape, codes out of range, too many levels)."""


@dataclass
class ProgramResult:
    core: int
    targets: np.ndarray                 # ADC codes asked for (rows x columns)
    pulses: np.ndarray                  # pulses each cell received
    codes: np.ndarray                   # ADC code of each cell read back after programming
    window: np.ndarray                  # each cell's accepted half-width, ADC codes
    cells_done: int                     # the engine's counters for the programming run
    cells_failed: int
    pulses_total: int
    failed_cells: list[tuple[int, int, int]] = field(default_factory=list)   # (core, row, column), logged
    us_per_code: float = 0.5
    #: Senses averaged per read-back code: the recipe's verify reads, as the chip's verify-only run made them.
    verify_reads: int = 1
    #: The codes a noiseless read would give (the model's true conductances): the model transport knows
    #: them, a chip does not (None).
    true_codes: np.ndarray | None = None

    @property
    def conductance_us(self) -> np.ndarray:
        return self.codes * self.us_per_code

    @property
    def in_window(self) -> np.ndarray:
        """Cells whose read-back code (the chip's own `verify_reads`-averaged read) lies within their window
        (relaxation or read noise can move a cell that verified during programming just outside it)."""
        return np.abs(self.codes.astype(int) - self.targets) <= self.window

    @property
    def in_window_true(self) -> np.ndarray | None:
        """Cells whose true conductance (no read noise) lies within their window; None from a chip."""
        if self.true_codes is None:
            return None
        return np.abs(self.true_codes.astype(int) - self.targets) <= self.window


class Programmer:
    """Programs and reads back cells over any SPI frame transport, in the user's terms: `program(core,
    targets, recipes)` returns a `ProgramResult` (pulses, read-back codes, counters, failed cells).

    What it does: checks the request against the config and the chip's identity before the first frame,
    writes the targets (or level indices and the level table) and the recipe registers, runs the engine
    over the rows (a run per row, or one for the whole core), polling the status byte until each is done
    and summing the counters and failed-cell log entries, then reads the pulse counts and reads every cell
    back with a verify-only run. What it owns: nothing on the chip between
    calls; it holds a `RegisterClient`. How it is verified: against the golden model through
    `Chip` (tests/test_chip.py), in cocotb (tests/test_cocotb_chip_pv.py), and its argument checks send no
    frame (tests/test_chip_arguments.py).
    """

    def __init__(self, regs: RegisterClient, config: ChipConfig, setup_cycles: int = 1,
                 poll_seconds: float = 1e-3, timeout_seconds: float = 60.0,
                 progress: Callable[[int, int], None] | None = None):
        if not isinstance(regs, RegisterClient):
            raise TypeError(f"regs must be a RegisterClient, not {type(regs).__name__}")
        if not isinstance(config, ChipConfig):
            raise TypeError(f"config must be a ChipConfig, not {type(config).__name__}")
        setup_cycles = check_int("setup_cycles", setup_cycles, 0)
        poll_seconds = check_seconds("poll_seconds", poll_seconds, positive=True)
        timeout_seconds = check_seconds("timeout_seconds", timeout_seconds, positive=True)
        check_progress(progress)
        self.regs = regs
        self.config = config
        self.setup_cycles = setup_cycles
        self.poll_seconds = poll_seconds
        #: In the chip's time (simulated seconds in co-simulation): the engine must finish by then.
        self.timeout_seconds = timeout_seconds
        self.progress = progress

    # ---- public -------------------------------------------------------------------------------------------
    def program(self, core: int, targets, recipes, first_row: int = 0, read_back: bool = True) -> ProgramResult:
        """Program rows `first_row`.. of `core` (as many as `targets` has, all columns) to their target ADC
        codes, with one recipe or per-level recipes {target code: PVSettings}."""
        config = self.config
        targets, recipes, shared = check_request(config, core, targets, recipes, first_row)
        read_back = _check_flag("read_back", read_back)
        check_identity(self.regs, config)
        rows = range(first_row, first_row + targets.shape[0])
        per_level = isinstance(recipes, dict)
        max_pulses = max(r.max_pulses for r in recipes.values()) if per_level else recipes.max_pulses
        if per_level:
            codes = sorted(recipes)
            buffer = np.searchsorted(codes, targets).astype(np.uint8)      # each cell's level index
            table = b"".join(pack_level(self._level_entry(code, recipes[code])) for code in codes)
            self.regs.write_window("pv_levels", 0, table)
        else:
            buffer = targets.astype(np.uint8)
        windows = cell_windows(targets, recipes)
        self._write_rows("pv_target", core, rows, buffer.tobytes())
        self._configure(core, shared, per_level)
        totals = {"pv_cells_done": 0, "pv_cells_failed": 0, "pv_pulses_total": 0}
        failed = []
        for scope, row in self._runs(rows):
            counters = self._run(scope, row, max_pulses)
            totals = {name: totals[name] + counters[name] for name in totals}
            failed += self._failed_cells(counters["pv_cells_failed"])
        pulses = self._read_rows("pv_pulses", core, rows)
        reads = shared.verify_reads
        codes = (self.read_codes(core, first_row, len(rows), reads=reads) if read_back
                 else self._read_rows("pv_codes", core, rows))
        return ProgramResult(core=core, targets=targets, pulses=pulses, codes=codes, window=windows,
                             cells_done=totals["pv_cells_done"], cells_failed=totals["pv_cells_failed"],
                             pulses_total=totals["pv_pulses_total"], failed_cells=failed,
                             us_per_code=config.us_per_adc_lsb, verify_reads=reads)

    def read_codes(self, core: int, first_row: int = 0, count: int | None = None, reads: int = 1) -> np.ndarray:
        """Rows `first_row`.. of `core` (`count` of them, all by default) read through the sense path by a
        verify-only run (no pulse), each code the mean of `reads` senses (1, 2, 4 or 8) as the engine's
        verify averages them. Returns ADC codes, rows x columns."""
        count = check_selection(self.config, core, first_row, count)
        reads_log2 = check_reads(self.config, reads)
        check_identity(self.regs, self.config)
        rows = range(first_row, first_row + count)
        self.regs.write("pv_per_level", 0)
        self.regs.write("pv_max_pulses", 0)
        self.regs.write("pv_mode", 0)
        self.regs.write("pv_verify", reads_log2=reads_log2, confirm=0)
        self.regs.write("pv_core", core)
        for scope, row in self._runs(rows):
            self._run(scope, row, max_pulses=0)
        return self._read_rows("pv_codes", core, rows)

    @staticmethod
    def _level_entry(code: int, recipe: PVSettings) -> dict:
        return {"target": code} | {name: getattr(recipe, name) for name in RECIPE_FIELDS}

    # ---- register traffic -----------------------------------------------------------------------------------
    def _configure(self, core: int, recipe: PVSettings, per_level: bool):
        regs = self.regs
        regs.write("pv_mode", algorithm=int(recipe.algorithm), cumulative=int(recipe.cumulative),
                   triangular=int(recipe.shape is Shape.TRIANGULAR),
                   reset_on_overshoot=int(recipe.reset_on_overshoot), form=int(recipe.form), scope=Scope.CORE)
        regs.write("pv_core", core)
        for name in DAC_FIELDS:
            regs.write(f"pv_{name}", getattr(recipe, name))
        regs.write("pv_pulse_width", recipe.pulse_width)
        regs.write("pv_setup_cycles", self.setup_cycles)
        regs.write("pv_max_pulses", recipe.max_pulses)
        regs.write("pv_window", recipe.window)
        regs.write("pv_per_level", int(per_level))
        regs.write("pv_verify", reads_log2=recipe.reads_log2, confirm=int(recipe.confirm))
        regs.write("pv_sl_step", recipe.sl_step)
        regs.write("pv_sl_stop", recipe.sl_stop)

    def _runs(self, rows: range) -> list[tuple[int, int]]:
        """(scope, row) of the engine runs that cover `rows`: one run for a whole core, else one per row."""
        if len(rows) == self.config.rows:
            return [(Scope.CORE, 0)]
        return [(Scope.ROW, row) for row in rows]

    def _run(self, scope: int, row: int, max_pulses: int) -> dict[str, int]:
        """Start the engine on one row or the whole core and wait for it; return its counters (refused if
        more than `max_pulses` pulses per cell could not produce them)."""
        regs = self.regs
        regs.write("pv_mode", scope=scope)
        regs.write("pv_row", row)
        regs.write("ctrl", regs.table.register("ctrl").field("pv_start").mask)
        cells = self.config.columns * (self.config.rows if scope == Scope.CORE else 1)

        def report():
            self.progress(regs.read("pv_cells_done") + regs.read("pv_cells_failed"), cells)
        regs.wait_done(StatusBit.PV_DONE, "pv_abort", self.timeout_seconds, self.poll_seconds,
                       between=report if self.progress else None, what="the P&V engine")
        counters = {name: regs.read(name) for name in ("pv_cells_done", "pv_cells_failed", "pv_pulses_total")}
        _check_counters(counters, cells, max_pulses)
        if self.progress:
            self.progress(counters["pv_cells_done"] + counters["pv_cells_failed"], cells)
        return counters

    def _base(self, core: int, rows: range) -> int:
        """Byte offset of the first row's first cell in a per-cell window."""
        return (core * self.config.rows + rows.start) * self.config.columns

    def _write_rows(self, window: str, core: int, rows: range, data: bytes):
        base = self._base(core, rows)
        for offset in range(0, len(data), CHUNK):
            self.regs.write_window(window, base + offset, data[offset:offset + CHUNK])

    def _read_rows(self, window: str, core: int, rows: range) -> np.ndarray:
        base, size = self._base(core, rows), len(rows) * self.config.columns
        raw = b"".join(self.regs.read_window(window, base + offset, min(CHUNK, size - offset))
                       for offset in range(0, size, CHUNK))
        return np.frombuffer(raw, np.uint8).reshape(len(rows), self.config.columns).astype(np.int64)

    def _failed_cells(self, failed: int) -> list[tuple[int, int, int]]:
        entries = min(failed, self.config.failed_log_depth)
        if entries == 0:
            return []
        return unpack_failed_log(self.regs.read_window("failed_log", 0, entries * FAILED_LOG_ENTRY_BYTES))



# ---- checks shared by the Programmer and the model transport ----------------------------------------------
def _check_flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, not {type(value).__name__} {value!r}")
    return bool(value)


def check_algorithm(config: ChipConfig, recipe: PVSettings) -> None:
    """The chip has the recipe's algorithm (a build with `pv_radar` off has no RADAR)."""
    if not config.pv_algorithms >> int(recipe.algorithm) & 1:
        raise ProgrammingError(f"{config.name!r} has no {recipe.algorithm.name} (pv_radar off); use ISPVA or IGVVA, "
                               f"or a config with pv_radar on")


def check_reads(config: ChipConfig, reads, what: str = "reads") -> int:
    """Senses averaged per read, checked (1, 2, 4 or 8, at most the build's `pv_verify_reads`); returns the
    register's reads_log2."""
    reads = check_int(what, reads)
    if reads not in VERIFY_READS:
        raise ProgrammingError(f"{what} = {reads}: the chip averages {', '.join(map(str, VERIFY_READS))} senses "
                               f"per read")
    if reads > config.pv_verify_reads:
        raise ProgrammingError(f"{what} = {reads}: {config.name!r} averages at most {config.pv_verify_reads} "
                               f"sense(s) per read (pv_averaging off); use 1 or a config with pv_averaging on")
    return reads.bit_length() - 1


def check_progress(progress) -> None:
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a function (done, total) or None, not {type(progress).__name__}")


def _check_core(config: ChipConfig, core) -> int:
    core = check_int("core", core)
    if not 0 <= core < config.cores:
        raise ProgrammingError(f"core {core} does not exist: the chip has {config.cores} cores")
    return core


def _check_rows(config: ChipConfig, first_row, count) -> None:
    first_row, count = check_int("first_row", first_row), check_int("count", count)
    if count < 1 or first_row < 0 or first_row + count > config.rows:
        raise ProgrammingError(f"rows {first_row}..{first_row + count - 1} do not fit a core of "
                               f"{config.rows} rows")


def check_selection(config: ChipConfig, core, first_row, count=None) -> int:
    """Rows `first_row`..`first_row + count - 1` of `core` exist (`count` None: to the last row); return
    the count."""
    _check_core(config, core)
    check_int("first_row", first_row)
    count = config.rows - first_row if count is None else count
    _check_rows(config, first_row, count)
    return count


def _check_counters(counters: dict[str, int], cells: int, max_pulses: int) -> None:
    """Refuse counters no run over `cells` cells with at most `max_pulses` pulses each can produce: the
    numbers of a link that answers garbage, not of a chip."""
    done, failed, pulses = counters["pv_cells_done"], counters["pv_cells_failed"], counters["pv_pulses_total"]
    if done + failed > cells:
        raise ChipError(f"the chip reports {done} cells done and {failed} failed of the {cells} selected: "
                        f"impossible, the link or the chip is not sound")
    if pulses > cells * max_pulses:
        raise ChipError(f"the chip reports {pulses} pulses for {cells} cells of at most {max_pulses} pulses "
                        f"each: impossible, the link or the chip is not sound")


def check_targets(config: ChipConfig, targets) -> np.ndarray:
    """Targets as an int64 array of ADC codes, rows x columns, or a ProgrammingError saying what is wrong."""
    try:
        array = np.asarray(targets)
    except ValueError as error:                         # a ragged list
        raise ProgrammingError(f"targets must be a rows x {config.columns} array of ADC codes: {error}") from None
    if array.ndim != 2 or array.shape[1] != config.columns or array.shape[0] < 1:
        raise ProgrammingError(f"targets have shape {array.shape}; give rows x {config.columns} columns")
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise ProgrammingError(f"targets must be integer ADC codes, not {array.dtype}")
    top = (1 << config.adc_bits) - 1
    if array.min() < 0 or array.max() > top:
        raise ProgrammingError(f"targets must be ADC codes 0..{top}, got {array.min()}..{array.max()}")
    return array.astype(np.int64)


def cell_windows(targets: np.ndarray, recipes) -> np.ndarray:
    """Each cell's accepted half-width (ADC codes): its level's window, or the one recipe's."""
    if isinstance(recipes, dict):
        return np.vectorize(lambda code: recipes[code].window)(targets)
    return np.full(targets.shape, recipes.window)


def check_request(config: ChipConfig, core: int, targets, recipes, first_row: int = 0):
    """Check a programming request before anything reaches the chip; return (targets as int64, recipes,
    the recipe whose shared fields the registers get)."""
    _check_core(config, core)
    targets = check_targets(config, targets)
    _check_rows(config, first_row, targets.shape[0])
    if isinstance(recipes, PVSettings):
        recipes.check_codes(config)
        check_reads(config, recipes.verify_reads, "verify_reads")
        check_algorithm(config, recipes)
        return targets, recipes, recipes
    if (not isinstance(recipes, dict) or not recipes
            or not all(isinstance(r, PVSettings) for r in recipes.values())):
        raise ProgrammingError("recipes must be a PVSettings or a non-empty dict {target code: PVSettings}")
    for code in recipes:
        check_int("a recipe's target code", code, 0, (1 << config.adc_bits) - 1)
    if len(recipes) > config.pv_levels:
        raise ProgrammingError(f"{len(recipes)} levels: the level table holds {config.pv_levels}")
    # The chip verifies at its drivers' read code, whatever v_read a recipe names.
    shared = check_level_recipes(recipes, targets, config, ignore=("v_read",))
    check_reads(config, shared.verify_reads, "verify_reads")
    check_algorithm(config, shared)
    return targets, recipes, shared
