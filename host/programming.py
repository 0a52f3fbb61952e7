"""Programming a core's conductances through the chip's own P&V engine, over any SPI frame transport.

    programmer = Programmer(RegisterClient(transport, TABLE), config)
    result = programmer.program(core=0, targets=codes, recipes=settings)   # one PVSettings or {code: PVSettings}
    result.pulses, result.codes, result.failed_cells, result.conductance_us

The host writes the level table (for per-level recipes) and the recipe registers, then streams the
targets through the engine's two slots (docs/pv_engine.md): it fills and commits both, starts the engine,
and refills each slot as the engine releases it, packing each target in as few bits as the run needs (3
for 8 levels). It reads the counters and the failed-cell log, and, if asked, each cell's pulse count
from its slot before refilling it; then a verify-only run (max_pulses = 0), streamed the same way, reads
every cell through the sense path, averaging as many senses per cell as the recipe's verify does, so the
conductances reported are what the chip's own verify sees. Bad input raises before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..config import ChipConfig
from ..models.device import Shape
from ..models.pv import VERIFY_READS, PVSettings, check_level_recipes
from ..protocol import (DAC_FIELDS, FAILED_LOG_ENTRY_BYTES, PV_SLOTS, RECIPE_FIELDS, TARGET_BITS_MAX, Scope,
                        StatusBit, pack_level, pack_targets, target_bits_for, unpack_failed_log)
from .registers import ChipError, RegisterClient, check_identity, check_int, check_seconds

__all__ = ["Programmer", "ProgramResult", "ProgrammingError", "check_request", "check_selection", "check_reads",
           "cell_windows", "target_bits_of"]

#: The run's counters, adjacent in the P&V page: read in one burst.
COUNTERS = ("pv_cells_done", "pv_cells_failed", "pv_pulses_total")


class ProgrammingError(ValueError):
    """A programming request the chip cannot carry out (wrong shape, codes out of range, too many levels)."""


@dataclass
class ProgramResult:
    core: int
    targets: np.ndarray                 # ADC codes asked for (rows x columns)
    #: Pulses each cell received, if asked for (`cell_pulses`): by default the host reads only the counters
    #: and the failed-cell log, and this is None.
    pulses: np.ndarray | None
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
    #: Bits each target took in the P&V slots (`target_bits_of`): 3 for 8 per-level recipes, 8 for ADC codes.
    target_bits: int = TARGET_BITS_MAX

    @property
    def mean_pulses(self) -> float:
        """Pulses per cell, from the engine's counter."""
        return self.pulses_total / self.targets.size

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
    writes the level table and the recipe registers, streams the targets (ADC codes, or level indices
    packed in as few bits as the levels need) through the engine's two slots in one run over the rows,
    reads the counters and the failed-cell log (and each cell's pulse count if asked), then reads every cell
    back with a streamed verify-only run. What it owns: nothing on the chip between calls; it holds a
    `RegisterClient`. How it is verified: against the golden model through
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
    def program(self, core: int, targets, recipes, first_row: int = 0, read_back: bool = True,
                cell_pulses: bool = False) -> ProgramResult:
        """Program rows `first_row`.. of `core` (as many as `targets` has, all columns) to their target ADC
        codes, with one recipe or per-level recipes {target code: PVSettings}. `cell_pulses`: also read
        each cell's pulse count (a byte per cell more on the link)."""
        config = self.config
        targets, recipes, shared = check_request(config, core, targets, recipes, first_row)
        read_back = _check_flag("read_back", read_back)
        cell_pulses = _check_flag("cell_pulses", cell_pulses)
        check_identity(self.regs, config)
        rows = range(first_row, first_row + targets.shape[0])
        per_level = isinstance(recipes, dict)
        max_pulses = max(r.max_pulses for r in recipes.values()) if per_level else recipes.max_pulses
        bits = target_bits_of(config, recipes)
        if per_level:
            codes = sorted(recipes)
            buffer = np.searchsorted(codes, targets)                       # each cell's level index
            table = b"".join(pack_level(self._level_entry(code, recipes[code])) for code in codes)
            self.regs.write_window("pv_levels", 0, table)
        else:
            buffer = targets
        windows = cell_windows(targets, recipes)
        self._configure(core, shared, per_level)
        wanted = ("pv_pulses",) * cell_pulses + ("pv_codes",) * (not read_back)
        counters, cells = self._stream(rows, buffer.reshape(-1), bits, max_pulses, wanted)
        failed = self._failed_cells(counters["pv_cells_failed"])
        reads = shared.verify_reads
        codes = (self.read_codes(core, first_row, len(rows), reads=reads) if read_back
                 else cells["pv_codes"])
        return ProgramResult(core=core, targets=targets, pulses=cells.get("pv_pulses"), codes=codes,
                             window=windows, cells_done=counters["pv_cells_done"],
                             cells_failed=counters["pv_cells_failed"], pulses_total=counters["pv_pulses_total"],
                             failed_cells=failed, us_per_code=config.us_per_adc_lsb, verify_reads=reads,
                             target_bits=bits)

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
        _, cells = self._stream(rows, None, TARGET_BITS_MAX, 0, ("pv_codes",))
        return cells["pv_codes"]

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

    def _stream(self, rows: range, targets: np.ndarray | None, bits: int, max_pulses: int,
                wanted: tuple[str, ...]) -> tuple[dict[str, int], dict[str, np.ndarray]]:
        """One engine run over `rows` (all columns), its targets (flat, the run's order; None: leave the
        slots' old bytes, for a verify-only read) streamed through the two slots `bits` bits each. Each
        slot is refilled as soon as the engine releases it, after its `wanted` windows (pv_pulses,
        pv_codes) are read. Returns the run's counters and {window: rows x columns}."""
        regs, config = self.regs, self.config
        size = config.pv_slot_cells
        count = len(rows) * config.columns
        chunks = [range(at, min(at + size, count)) for at in range(0, count, size)]
        whole = len(rows) == config.rows
        regs.write("pv_mode", scope=Scope.CORE if whole else Scope.ROW)
        regs.write("pv_row", 0 if whole else rows.start)
        regs.write("pv_rows", len(rows))
        regs.write("pv_target_bits", bits)
        ctrl = regs.table.register("ctrl")
        stream = regs.table.register("pv_stream")
        if regs.read("pv_stream") != stream.field("ready").mask:
            # Slots committed by a host that never started its run: an abort with no run frees them.
            regs.write("ctrl", ctrl.field("pv_abort").mask)
        found = {name: np.zeros(count, np.int64) for name in wanted}

        def fill(k: int):
            if targets is not None:
                regs.write_window("pv_target", k % PV_SLOTS * size, pack_targets(targets[chunks[k].start:chunks[k].stop], bits))
            regs.write("ctrl", ctrl.field("pv_commit").mask)

        def collect(k: int):
            for name in wanted:
                raw = regs.read_window(name, k % PV_SLOTS * size, len(chunks[k]))
                found[name][chunks[k].start:chunks[k].stop] = np.frombuffer(raw, np.uint8)

        with regs.batched():
            for k in range(min(PV_SLOTS, len(chunks))):
                fill(k)
            regs.write("ctrl", ctrl.field("pv_start").mask)
            for k in range(PV_SLOTS, len(chunks)):
                self._wait_slot(stream.field("ready").mask)
                collect(k - PV_SLOTS)
                fill(k)
                if self.progress:
                    self.progress(chunks[k - PV_SLOTS].stop, count)
        regs.wait_done(StatusBit.PV_DONE, "pv_abort", self.timeout_seconds, self.poll_seconds,
                       what="the P&V engine")
        counters = dict(zip(COUNTERS, regs.read_many(*COUNTERS)))
        _check_counters(counters, count, max_pulses)
        for k in range(max(0, len(chunks) - PV_SLOTS), len(chunks)):
            collect(k)
        if self.progress:
            self.progress(count, count)
        return counters, {name: values.reshape(len(rows), config.columns) for name, values in found.items()}

    def _wait_slot(self, ready: int) -> None:
        """Poll PV_STREAM until the slot the host fills next is free; past the timeout (chip time), abort."""
        self.regs.poll_until(lambda: bool(self.regs.read("pv_stream") & ready), "pv_abort", self.timeout_seconds,
                             self.poll_seconds, failure="the P&V engine did not free a slot")

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


def target_bits_of(config: ChipConfig, recipes) -> int:
    """Bits per target in the P&V slots: a level index in as few bits as the per-level table needs, else
    an ADC code (a byte); a byte always on a build without packing (`ChipConfig.pv_packing` off)."""
    if isinstance(recipes, dict) and config.pv_packing:
        return target_bits_for(len(recipes) - 1)
    return TARGET_BITS_MAX


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
