"""Mapping one signed matrix onto one core for matrix-vector multiplication, in either direction or both.

The cells hold a signed level matrix A (rows_used x neurons_used) as differential pairs: A[i, k] = w puts
level max(w, 0) on cell (i, 2k) and max(-w, 0) on cell (i, 2k+1), as `compile_layer` does. The forward
pass (rows driven, column pairs sensed) then computes A^T x, the backward pass (column pairs driven, rows
sensed) A y (docs/mvm.md). So a matrix W for

* `"forward"` (y = W x, W outputs x inputs = neurons_used x rows_used) is laid out as A = W^T;
* `"backward"` (y = W x, W = rows_used x neurons_used) as A = W;
* `"both"` (an RBM's W forward and W^T backward from the same cells; W as forward) as A = W^T.

Balancing. A voltage-mode neuron sees a cell's conductance divided by the total of the line it senses
(`models.mvm.effective_weights`): G[i, 2k] / T[2k] forward, G[i, 2k] / R[i] backward. The level pair's
difference is proportional to the weight only where every sensed line has the same total, so:

* forward: every used column (both columns of every used pair) is raised to the largest used column's
  level sum by the balance rows (every row no input drives), the deficit spread evenly over them;
* backward: every used row is raised to the largest used row's level sum by the balance columns (every
  column of the column pairs no input drives), likewise.

Balance rows are never driven forward and their outputs are not read backward; balance columns are never
driven backward and their neurons are not read forward; the corner where both meet stays at the lowest
level. So the two balancings do not disturb each other, and "both" costs only what each takes: at least one
spare row and one spare column pair wherever the used lines' sums differ, and sensed totals (so a gain) per
direction that differ in general (`lsb_per_unit` gives each). What cannot fit is refused with the sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import ChipConfig, read_limit_code
from ..models.macro import NeuronCodes
from ..models.mvm import ideal_outputs
from ..models.neurons import NeuronParams
from ..protocol import Direction
from .compiler import THRESHOLD_CODE_MAX, CompileError, check_read_code

__all__ = ["MatrixMapping", "map_matrix", "DIRECTIONS"]

#: What a mapping serves: the MVM directions by name, or both from the same cells.
DIRECTIONS = ("forward", "backward", "both")


def _direction(direction) -> Direction:
    """A direction of one MVM (not "both"): Direction, or its name."""
    try:
        return Direction[direction.upper()] if isinstance(direction, str) else Direction(direction)
    except (KeyError, ValueError, AttributeError):
        raise CompileError(f"an MVM runs 'forward' or 'backward', not {direction!r}") from None


@dataclass(frozen=True)
class MatrixMapping:
    """One matrix on one core (`map_matrix`): the P&V targets, and how its MVMs read."""
    config: ChipConfig
    core: int
    #: "forward", "backward" or "both": the directions whose sensed lines are balanced.
    direction: str
    level_codes: tuple[int, ...]
    #: ADC-code targets of every cell of the core (rows x columns), as `Chip.program(core, targets)` takes.
    targets: np.ndarray
    #: Level index of every cell (rows x columns).
    levels: np.ndarray
    #: The matrix as programmed, in levels (W's shape): W quantized, `levels_per_unit` levels per unit of W.
    weights: np.ndarray
    levels_per_unit: float
    rows_used: int
    neurons_used: int
    balance_rows: tuple[int, ...]
    balance_columns: tuple[int, ...]
    #: The level sum every used column (forward) and every used row (backward) was raised to; None where
    #: that direction is not balanced.
    column_total: int | None
    row_total: int | None

    @property
    def directions(self) -> tuple[Direction, ...]:
        return (Direction.FORWARD, Direction.BACKWARD) if self.direction == "both" else (_direction(self.direction),)

    def _served(self, direction) -> Direction:
        direction = _direction(direction)
        if direction not in self.directions:
            raise CompileError(f"the matrix was mapped for {self.direction} MVMs only: its "
                               f"{'rows' if direction is Direction.BACKWARD else 'columns'} are not balanced for "
                               f"{direction.name.lower()} ones (map it with direction='both')")
        return direction

    def conductances_us(self) -> np.ndarray:
        """The targets as conductances (uS): what an ideally programmed core holds."""
        return self.targets * self.config.us_per_adc_lsb

    def sizes(self, direction) -> tuple[int, int]:
        """(outputs, inputs) of the matrix one `direction` MVM computes."""
        pair = (self.neurons_used, self.rows_used)
        return pair if self._served(direction) is Direction.FORWARD else pair[::-1]

    def matrix(self, direction) -> np.ndarray:
        """The matrix one `direction` MVM computes, in levels (outputs x inputs): W, or W^T backward on "both"."""
        cells = self.weights if self.direction == "backward" else self.weights.T      # A: rows x pairs
        return cells.T if self._served(direction) is Direction.FORWARD else cells

    def sensed_total_us(self, direction) -> float:
        """The total conductance of every used sensed line (a column forward, a row backward), in uS."""
        g = self.conductances_us()
        if self._served(direction) is Direction.FORWARD:
            return float(g[:, 0].sum())
        return float(g[0].sum())

    def lsb_per_unit(self, direction, threshold_code: int, v_read_code: int | None = None,
                     gain: float = NeuronParams().gain) -> float:
        """Output LSBs per unit of W x (W in its own units): a noise-free output is W x times this, truncated
        towards zero (`models.mvm.ideal_outputs`). The membrane moves gain * V_read * dG / total per level
        of W x and sample, dG the conductance of one level; the LSB is the threshold."""
        config = self.config
        v_read_code = self._read_code(v_read_code)
        step_us = (self.level_codes[1] - self.level_codes[0]) * config.us_per_adc_lsb
        volts_per_level = gain * v_read_code * config.bl_volts_per_lsb * step_us / self.sensed_total_us(direction)
        return volts_per_level * self.levels_per_unit / (_threshold(threshold_code) * config.threshold_volts_per_lsb)

    def threshold_code_for(self, direction, units_per_lsb: float, v_read_code: int | None = None,
                           gain: float = NeuronParams().gain) -> int:
        """The threshold code whose output LSB is closest to `units_per_lsb` units of W x: for outputs of
        `out_bits` spanning |W x| <= full_scale, units_per_lsb = full_scale / (2^out_bits - 1)."""
        if not np.isfinite(units_per_lsb) or units_per_lsb <= 0:
            raise CompileError(f"units_per_lsb = {units_per_lsb!r}: a positive number of W's units")
        per_code = self.lsb_per_unit(direction, 1, v_read_code, gain)      # LSBs per unit at one code
        code = round(per_code * units_per_lsb)
        if not 1 <= code <= THRESHOLD_CODE_MAX:
            raise CompileError(f"{units_per_lsb} units per output LSB needs threshold code {code}; the register "
                               f"holds 1..{THRESHOLD_CODE_MAX} (one code is {1 / per_code:.4g} units)")
        return int(code)

    def line_inputs(self, x, direction) -> np.ndarray:
        """`x` (one per input of the matrix) as `Chip.mvm` takes it: one per row forward, per column pair
        backward, the unused lines at 0."""
        direction = self._served(direction)
        x = np.asarray(x)
        inputs = self.sizes(direction)[1]
        if x.dtype.kind not in "iu" or x.shape != (inputs,):
            raise CompileError(f"the {direction.name.lower()} MVM of this {self.sizes(direction)[0]}x{inputs} "
                               f"matrix takes {inputs} integer inputs, not an array of {x.shape} {x.dtype}")
        lines = self.config.rows if direction is Direction.FORWARD else self.config.neurons
        padded = np.zeros(lines, dtype=np.int64)
        padded[:inputs] = x
        return padded

    def used_outputs(self, y, direction) -> np.ndarray:
        """The matrix's outputs out of `Chip.mvm`'s (one per column pair forward, per row backward)."""
        return np.asarray(y)[:self.sizes(direction)[0]]

    def run(self, chip, x, direction, in_bits: int = 1, out_bits: int = 1, conversion: str = "count",
            threshold_code: int = 1, v_read_code: int | None = None) -> np.ndarray:
        """One MVM of the mapped matrix on `chip` (a `host.chip.Chip` whose core holds these targets)."""
        direction = self._served(direction)
        y = chip.mvm(self.core, self.line_inputs(x, direction), direction.name.lower(), in_bits, out_bits,
                     conversion, threshold_code, self._read_code(v_read_code))
        return self.used_outputs(y, direction)

    def expected(self, x, direction, out_bits: int, threshold_code: int, v_read_code: int | None = None,
                 g_us=None, gain: float = NeuronParams().gain) -> np.ndarray:
        """What a noise-free core converts for `x` (`models.mvm.ideal_outputs`) on the mapped conductances,
        or on `g_us` (e.g. `Chip.read_conductances`): the matrix's outputs only."""
        direction = self._served(direction)
        g = self.conductances_us() if g_us is None else np.asarray(g_us, dtype=float)
        codes = NeuronCodes(thresh_pos=_threshold(threshold_code), thresh_neg=_threshold(threshold_code))
        y = ideal_outputs(g, self.line_inputs(x, direction), direction, self.config, codes,
                          self._read_code(v_read_code), out_bits, gain)
        return self.used_outputs(y, direction)

    def _read_code(self, v_read_code) -> int:
        v_read_code = read_limit_code(self.config) if v_read_code is None else v_read_code
        check_read_code(v_read_code, self.config)
        return int(v_read_code)


def _threshold(code) -> int:
    if isinstance(code, bool) or not isinstance(code, (int, np.integer)) or not 1 <= code <= THRESHOLD_CODE_MAX:
        raise CompileError(f"threshold code {code!r} is outside 1..{THRESHOLD_CODE_MAX}")
    return int(code)


def _check_level_codes(level_codes, config: ChipConfig) -> np.ndarray:
    codes = np.asarray(level_codes)
    if codes.ndim != 1 or len(codes) < 2 or codes.dtype.kind not in "iu" or np.any(np.diff(codes) <= 0):
        raise CompileError("level_codes must list at least two increasing integer ADC codes")
    if np.any(np.diff(codes) != codes[1] - codes[0]):
        raise CompileError("level_codes must be evenly spaced: balancing counts levels, so a level must add the "
                           "same conductance everywhere")
    if len(codes) > config.pv_levels:
        raise CompileError(f"{len(codes)} levels: the P&V level table holds {config.pv_levels}")
    if codes[0] < 1 or codes[-1] > (1 << config.adc_bits) - 1:
        raise CompileError(f"level codes must be ADC codes 1..{(1 << config.adc_bits) - 1} (a sensed line "
                           "needs conductance to settle)")
    return codes


def _quantized(weights, top: int, levels_per_unit) -> tuple[np.ndarray, float]:
    """W in levels: integers as they are, floats scaled by `levels_per_unit` (default: the largest |W| on the
    top level) and rounded."""
    w = np.asarray(weights)
    if w.ndim != 2 or w.dtype.kind not in "iuf" or 0 in w.shape:
        raise CompileError(f"the matrix must be a non-empty 2-D array of integers or floats, not {w.shape} {w.dtype}")
    if w.dtype.kind in "iu":
        if levels_per_unit is not None:
            raise CompileError("levels_per_unit is for float matrices: an integer matrix is in levels already")
        levels, scale = w.astype(np.int64), 1.0
    else:
        if not np.all(np.isfinite(w)):
            raise CompileError("the matrix has values that are not finite")
        largest = float(np.abs(w).max())
        scale = (top / largest if largest else 1.0) if levels_per_unit is None else float(levels_per_unit)
        if not np.isfinite(scale) or scale <= 0:
            raise CompileError(f"levels_per_unit = {levels_per_unit!r}: a positive number")
        levels = np.rint(w * scale).astype(np.int64)
    worst = int(np.abs(levels).max())
    if worst > top:
        raise CompileError(f"the matrix reaches {worst} levels; {top + 1} levels allow +-{top}"
                           + (f" (at {scale:g} levels per unit)" if w.dtype.kind == "f" else ""))
    return levels, scale


def _balance(sums: np.ndarray, spare: int, top: int, what: str, lines: str, spares: str,
             used: str, total: int | None = None) -> tuple[np.ndarray, int]:
    """Levels on `spare` balance lines raising each of `sums` to `total` (default: their maximum), the
    deficit of each spread evenly (spare x len(sums)); and that total."""
    largest = int(sums.max())
    if total is None:
        total = largest
    elif isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < largest:
        raise CompileError(f"{lines[:-1]}_total = {total!r}: the used {lines} sum to up to {largest} levels, so "
                           f"their total must be an integer of at least {largest}")
    total = int(total)
    deficit = total - sums
    if int(deficit.max()) > spare * top:
        worst = int(deficit.argmax())
        raise CompileError(f"no room to balance the {what} direction: the used {lines} sum to {int(sums.min())}.."
                           f"{largest} levels{f' (raised to {total})' if total > largest else ''}, and {used} leave "
                           f"{spare} {spares}, which add at most {spare * top} "
                           f"levels ({lines[:-1]} {worst} is {int(deficit[worst])} short): spread the weight more "
                           f"evenly over the {lines} or map a smaller matrix")
    if spare == 0:
        return np.zeros((0, len(sums)), dtype=np.int64), total
    base, extra = np.divmod(deficit, spare)
    fill = base[None, :] + (np.arange(spare)[:, None] < extra[None, :])
    return fill.astype(np.int64), total


def map_matrix(weights, level_codes, config: ChipConfig, direction: str = "both", core: int = 0,
               levels_per_unit: float | None = None, column_total: int | None = None,
               row_total: int | None = None) -> MatrixMapping:
    """Map the signed matrix `weights` onto `core` for `direction` MVMs ("forward", "backward" or "both";
    see the module docstring for the layouts and the balancing). Integer matrices are levels (|w| at most
    len(level_codes) - 1); float ones are quantized at `levels_per_unit` (default: the largest |w| on the
    top level). `column_total` and `row_total` (levels) raise the used columns (forward) and rows
    (backward) to more than their largest sum, so that several mappings share one gain (`map_tiled`).
    Refused with the sizes: a matrix larger than the core, no room to balance, levels out of range, an
    unknown direction, a total below the largest line's sum."""
    if direction not in DIRECTIONS:
        raise CompileError(f"direction = {direction!r}: a matrix is mapped for 'forward', 'backward' or 'both'")
    if isinstance(core, bool) or not isinstance(core, (int, np.integer)) or not 0 <= core < config.cores:
        raise CompileError(f"core {core!r} does not exist: the chip has {config.cores} cores")
    if column_total is not None and direction == "backward":
        raise CompileError("column_total is the forward direction's balance: a backward mapping takes row_total")
    if row_total is not None and direction == "forward":
        raise CompileError("row_total is the backward direction's balance: a forward mapping takes column_total")
    codes = _check_level_codes(level_codes, config)
    top = len(codes) - 1
    levels_w, scale = _quantized(weights, top, levels_per_unit)
    cells = levels_w if direction == "backward" else levels_w.T               # A: rows_used x neurons_used
    rows_used, neurons_used = cells.shape
    outputs, inputs = levels_w.shape
    if rows_used > config.rows or neurons_used > config.neurons:
        shape = "rows x neurons" if direction == "backward" else "outputs x inputs"
        raise CompileError(f"a {outputs}x{inputs} matrix ({shape}) needs {rows_used} rows and {neurons_used} "
                           f"neurons (column pairs): core {core} has {config.rows} rows and {config.neurons} neurons")

    levels = np.zeros((config.rows, config.columns), dtype=np.int64)
    used_columns = 2 * neurons_used
    levels[:rows_used, 0:used_columns:2] = np.maximum(cells, 0)
    levels[:rows_used, 1:used_columns:2] = np.maximum(-cells, 0)
    balance_rows, balance_columns = (), ()
    if direction in ("forward", "both"):
        spare = config.rows - rows_used
        fill, column_total = _balance(levels[:rows_used, :used_columns].sum(axis=0), spare, top, "forward", "columns",
                                      "balance rows", f"{rows_used} used rows of {config.rows}", column_total)
        levels[rows_used:, :used_columns] = fill
        balance_rows = tuple(range(rows_used, config.rows))
    if direction in ("backward", "both"):
        spare = config.columns - used_columns
        fill, row_total = _balance(levels[:rows_used, :used_columns].sum(axis=1), spare, top, "backward", "rows",
                                   "balance columns", f"{neurons_used} used neurons ({used_columns} columns of "
                                   f"{config.columns})", row_total)
        levels[:rows_used, used_columns:] = fill.T
        balance_columns = tuple(range(used_columns, config.columns))
    return MatrixMapping(config=config, core=int(core), direction=direction,
                         level_codes=tuple(int(c) for c in codes), targets=codes[levels], levels=levels,
                         weights=levels_w, levels_per_unit=scale, rows_used=rows_used, neurons_used=neurons_used,
                         balance_rows=balance_rows, balance_columns=balance_columns,
                         column_total=column_total, row_total=row_total)
