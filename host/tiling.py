"""Matrices larger than one core for MVM: tiles on several cores, their partial sums added in the host.

The signed matrix is split as its cells would lie on one large core (the level matrix A of
`host.matrix_mapping`: rows x column pairs, A = W^T for "forward" and "both", A = W for "backward"):
its rows into row chunks of at most the rows a core can give to inputs and outputs (one row fewer when
the forward direction is balanced: map_matrix's balance rows), its column pairs into chunks of at most
the neurons (one fewer when the backward direction is balanced: its balance columns). Tile (i, j), row
chunk i by pair chunk j, is one `MatrixMapping` on its own core, row chunk by row chunk. A forward MVM
drives each tile's rows with its slice of x and adds the tiles of one pair chunk: their outputs are
partial sums over the row chunks; a backward MVM drives each tile's column pairs and adds over the pair
chunks. NeuRRAM splits a layer larger than a core the same way and sums the partials digitally.

The chunks are as even as the sizes allow (100 rows in two chunks are 50 + 50, not 63 + 37), so every
tile keeps room for its balance lines; where a tile's lines still cannot be balanced, its dimension
takes one more chunk, until the tiles need more cores than given (refused, naming the sizes).

One scale for every tile. The partials of one output only add up if each tile turns a unit of W x into
the same number of output LSBs. Every tile quantizes W at the same levels_per_unit, and the balancing
raises every used column (forward) and every used row (backward) of every tile to the same level sum,
the largest any tile needs (map_matrix's `column_total`, `row_total`), so every tile has the same sensed
totals and hence the same gain. So one threshold code, chosen for the whole matrix
(`TiledMapping.threshold_code_for`), serves every tile: there is no per-tile rounding of the scale.

What the host addition costs. Each partial is converted, so truncated towards zero and saturated,
separately: a sum of n partials carries n truncation errors (each under one LSB, towards zero) instead
of one, so against the exact product the RMS error grows as sqrt(n / 3) LSB where the partials' signs are
mixed (up to n LSB where they agree); and a partial saturates at 2^out_bits - 1 on its own. Choose the
threshold so that no partial passes the top code (`units_per_lsb` from the largest partial,
`partial_products`; `threshold_code_for` rounds up), and the sum then spans up to n (2^out_bits - 1) LSB.
Reading each non-zero partial at the middle of its interval (`run(..., midpoint=True)`, as NeuRRAM reads
its outputs as (steps - 0.5) x sign) halves each one's error (docs/host.md has the measurements).

Spiking layers are not split: a spiking neuron fires on its own core's charge, and a routing entry sends
a spike to one row of one core (docs/inference.md), so neither partial sums nor fan-out cross cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import ChipConfig
from ..models.neurons import NeuronParams
from ..protocol import Direction
from .compiler import THRESHOLD_CODE_MAX, CompileError
from .matrix_mapping import DIRECTIONS, MatrixMapping, _check_level_codes, _quantized, map_matrix

__all__ = ["Tile", "TiledMapping", "map_tiled"]


@dataclass(frozen=True)
class Tile:
    """One core's share of a tiled matrix: the rows and column pairs of the large matrix A it holds."""
    mapping: MatrixMapping
    #: A's rows on this tile (its forward inputs, its backward outputs).
    rows: range
    #: A's column pairs on this tile (its forward outputs, its backward inputs).
    pairs: range

    def lines(self, direction: Direction) -> tuple[slice, slice]:
        """(inputs, outputs) of the large matrix this tile serves in `direction`, as slices."""
        rows, pairs = slice(self.rows.start, self.rows.stop), slice(self.pairs.start, self.pairs.stop)
        return (rows, pairs) if direction is Direction.FORWARD else (pairs, rows)


@dataclass(frozen=True)
class TiledMapping:
    """One matrix on several cores (`map_tiled`): a `MatrixMapping` per tile, all on one scale."""
    config: ChipConfig
    #: "forward", "backward" or "both", as map_matrix takes it.
    direction: str
    level_codes: tuple[int, ...]
    tiles: tuple[Tile, ...]
    #: The matrix as programmed, in levels (W's shape).
    weights: np.ndarray
    levels_per_unit: float
    #: How many chunks A's rows and its column pairs were split into (tiles = row_chunks x pair_chunks).
    row_chunks: int
    pair_chunks: int
    #: The level sum of every used column (forward) and row (backward) of every tile; None if not balanced.
    column_total: int | None
    row_total: int | None

    @property
    def cores(self) -> tuple[int, ...]:
        return tuple(tile.mapping.core for tile in self.tiles)

    def _served(self, direction) -> Direction:
        return self.tiles[0].mapping._served(direction)

    def _cells(self) -> np.ndarray:
        """A: the level matrix as the cells of one large core would hold it (rows x column pairs)."""
        return self.weights if self.direction == "backward" else self.weights.T

    def sizes(self, direction) -> tuple[int, int]:
        """(outputs, inputs) of the matrix one `direction` MVM computes."""
        return self.matrix(direction).shape

    def matrix(self, direction) -> np.ndarray:
        """The matrix one `direction` MVM computes, in levels (outputs x inputs)."""
        cells = self._cells()
        return cells.T if self._served(direction) is Direction.FORWARD else cells

    def partials_per_output(self, direction) -> int:
        """How many tiles' partial sums make one output of a `direction` MVM."""
        return self.row_chunks if self._served(direction) is Direction.FORWARD else self.pair_chunks

    def lsb_per_unit(self, direction, threshold_code: int, v_read_code: int | None = None,
                     gain: float = NeuronParams().gain) -> float:
        """Output LSBs per unit of W x, the same on every tile (`MatrixMapping.lsb_per_unit`)."""
        return self.tiles[0].mapping.lsb_per_unit(direction, threshold_code, v_read_code, gain)

    def threshold_code_for(self, direction, units_per_lsb: float, v_read_code: int | None = None,
                           gain: float = NeuronParams().gain) -> int:
        """The threshold code (one for every tile): the smallest whose output LSB is at least `units_per_lsb`
        units of W x (map_matrix's rounds to the nearest). Each partial saturates on its own: with
        units_per_lsb the largest |partial| expected (`partial_products`) over 2^out_bits - 1, none does."""
        if not np.isfinite(units_per_lsb) or units_per_lsb <= 0:
            raise CompileError(f"units_per_lsb = {units_per_lsb!r}: a positive number of W's units")
        per_code = self.lsb_per_unit(direction, 1, v_read_code, gain)             # LSBs per unit at one code
        code = max(1, math.ceil(per_code * units_per_lsb * (1 - 1e-12)))
        if code > THRESHOLD_CODE_MAX:
            raise CompileError(f"{units_per_lsb} units per output LSB needs threshold code {code}; the register "
                               f"holds 1..{THRESHOLD_CODE_MAX} (one code is {1 / per_code:.4g} units)")
        return int(code)

    def _inputs(self, x, direction: Direction) -> np.ndarray:
        x = np.asarray(x)
        outputs, inputs = self.sizes(direction)
        if x.dtype.kind not in "iu" or x.shape != (inputs,):
            raise CompileError(f"the {direction.name.lower()} MVM of this {outputs}x{inputs} matrix takes {inputs} "
                               f"integer inputs, not an array of {x.shape} {x.dtype}")
        return x

    def partial_products(self, x, direction) -> np.ndarray:
        """Each tile's exact partial product in levels of W x (tiles x outputs of the whole matrix, zero
        where a tile has no share): what sets the range each partial must convert."""
        direction = self._served(direction)
        x = self._inputs(x, direction)
        cells = self._cells()
        partials = np.zeros((len(self.tiles), self.sizes(direction)[0]), dtype=np.int64)
        for k, tile in enumerate(self.tiles):
            inputs, outputs = tile.lines(direction)
            block = cells[tile.rows.start:tile.rows.stop, tile.pairs.start:tile.pairs.stop]
            partials[k, outputs] = (block if direction is Direction.BACKWARD else block.T) @ x[inputs]
        return partials

    def program(self, chip, recipes=None, progress=None) -> list:
        """P&V of every tile's core (`Chip.program(core, targets, recipes)`): one `ProgramResult` per tile."""
        return [chip.program(tile.mapping.core, tile.mapping.targets, recipes, progress=progress)
                for tile in self.tiles]

    def run(self, chip, x, direction, in_bits: int = 1, out_bits: int = 1, conversion: str = "count",
            threshold_code: int = 1, v_read_code: int | None = None, midpoint: bool = False,
            tiles=None) -> np.ndarray:
        """One MVM of the whole matrix: each tile's MVM on its core, the partials of each output added
        (integers in output LSBs, up to `partials_per_output` x (2^out_bits - 1)). With `midpoint`, each
        non-zero partial y below the top code counts as y + sign(y) / 2, the middle of the interval its
        truncation leaves (NeuRRAM reads its outputs as (steps - 0.5) x sign): floats, half the error.
        `tiles` (some of `self.tiles`) runs only those; the outputs no tile of them holds read 0."""
        return self._combine(x, direction, out_bits, midpoint, lambda tile, direction, x_tile: tile.mapping.run(
            chip, x_tile, direction, in_bits, out_bits, conversion, threshold_code, v_read_code), tiles)

    def expected(self, x, direction, out_bits: int, threshold_code: int, v_read_code: int | None = None,
                 g_us=None, gain: float = NeuronParams().gain, midpoint: bool = False) -> np.ndarray:
        """What noise-free cores give `run` (each tile's `MatrixMapping.expected`, added): on the mapped
        conductances, or on `g_us`, a dict core -> conductances (e.g. `Chip.read_conductances(core)`)."""
        return self._combine(x, direction, out_bits, midpoint, lambda tile, direction, x_tile: tile.mapping.expected(
            x_tile, direction, out_bits, threshold_code, v_read_code,
            None if g_us is None else g_us[tile.mapping.core], gain))

    def _combine(self, x, direction, out_bits: int, midpoint: bool, partial, tiles=None) -> np.ndarray:
        direction = self._served(direction)
        x = self._inputs(x, direction)
        y = np.zeros(self.sizes(direction)[0], dtype=float if midpoint else np.int64)
        for tile in self.tiles if tiles is None else tiles:
            inputs, outputs = tile.lines(direction)
            part = partial(tile, direction.name.lower(), x[inputs])
            if midpoint:
                # A zero is already the middle of (-1, 1); a saturated partial has no upper end to halve.
                part = part + np.where(np.abs(part) < (1 << out_bits) - 1, np.sign(part) / 2, 0.0)
            y[outputs] += part
        return y


def _chunks(length: int, count: int) -> list[range]:
    """`length` lines in `count` chunks as even as possible (sizes differ by at most one)."""
    bounds = [length * k // count for k in range(count + 1)]
    return [range(start, stop) for start, stop in zip(bounds, bounds[1:])]


def _line_sums(cells: np.ndarray, rows: range, pairs: range) -> tuple[np.ndarray, np.ndarray]:
    """(column sums, row sums) in levels of the tile of A holding `rows` x `pairs`, as map_matrix lays it."""
    block = cells[rows.start:rows.stop, pairs.start:pairs.stop]
    plus, minus = np.maximum(block, 0), np.maximum(-block, 0)
    return np.concatenate([plus.sum(axis=0), minus.sum(axis=0)]), (plus + minus).sum(axis=1)


def _check_cores(cores, config: ChipConfig) -> tuple[int, ...]:
    cores = tuple(range(config.cores)) if cores is None else tuple(cores)
    for core in cores:
        if isinstance(core, bool) or not isinstance(core, (int, np.integer)) or not 0 <= core < config.cores:
            raise CompileError(f"core {core!r} does not exist: the chip has {config.cores} cores")
    if not cores or len(set(cores)) != len(cores):
        raise CompileError(f"cores = {cores}: one or more distinct cores, one per tile")
    return tuple(int(core) for core in cores)


def _check_limit(value, name: str, limit: int, why: str) -> int:
    if value is None:
        return limit
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= limit:
        raise CompileError(f"{name} = {value!r}: 1..{limit} ({why})")
    return int(value)


def map_tiled(weights, level_codes, config: ChipConfig, cores=None, direction: str = "both",
              levels_per_unit: float | None = None, max_rows: int | None = None,
              max_neurons: int | None = None) -> TiledMapping:
    """Map the signed matrix `weights` (as map_matrix takes it: outputs x inputs for "forward" and "both",
    rows x neurons for "backward") onto tiles, one per core of `cores` (default: every core, in order),
    for `direction` MVMs; see the module docstring. Each tile holds at most `max_rows` rows of A and
    `max_neurons` column pairs (default: a core's, less one balance line per balanced direction). A float
    matrix is quantized at one `levels_per_unit` for every tile (default: its largest |w| on the top
    level). Refused with the sizes: more tiles than cores, and whatever map_matrix refuses."""
    if direction not in DIRECTIONS:
        raise CompileError(f"direction = {direction!r}: a matrix is mapped for 'forward', 'backward' or 'both'")
    cores = _check_cores(cores, config)
    codes = _check_level_codes(level_codes, config)
    top = len(codes) - 1
    levels_w, scale = _quantized(weights, top, levels_per_unit)
    float_scale = scale if np.asarray(weights).dtype.kind == "f" else None
    cells = levels_w if direction == "backward" else levels_w.T                   # A: rows x column pairs
    forward, backward = direction in ("forward", "both"), direction in ("backward", "both")
    max_rows = _check_limit(max_rows, "max_rows", config.rows - forward,
                            "a core's rows" + (", one kept for balancing" if forward else ""))
    max_neurons = _check_limit(max_neurons, "max_neurons", config.neurons - backward,
                               "a core's neurons" + (", one pair kept for balancing" if backward else ""))
    rows_total, pairs_total = cells.shape
    row_chunks, pair_chunks = math.ceil(rows_total / max_rows), math.ceil(pairs_total / max_neurons)
    why = ""
    while True:
        if row_chunks * pair_chunks > len(cores) or row_chunks > rows_total or pair_chunks > pairs_total:
            outputs, inputs = levels_w.shape
            shape = "rows x neurons" if direction == "backward" else "outputs x inputs"
            largest = lambda length, count: -(-length // count)                     # noqa: E731
            raise CompileError(
                f"a {outputs}x{inputs} matrix ({shape}) for {direction} MVMs needs {row_chunks} row chunks of at "
                f"most {largest(rows_total, row_chunks)} rows x {pair_chunks} neuron chunks of at most "
                f"{largest(pairs_total, pair_chunks)} neurons = {row_chunks * pair_chunks} tiles, one per core; "
                f"{len(cores)} cores given {cores} ({config.rows} rows and {config.neurons} neurons each){why}")
        row_ranges, pair_ranges = _chunks(rows_total, row_chunks), _chunks(pairs_total, pair_chunks)
        sums = {(i, j): _line_sums(cells, rows, pairs) for i, rows in enumerate(row_ranges)
                for j, pairs in enumerate(pair_ranges)}
        column_total = max(int(columns.max()) for columns, _ in sums.values()) if forward else None
        row_total = max(int(rows.max()) for _, rows in sums.values()) if backward else None
        short_rows = [(column_total - int(columns.min()), (config.rows - len(row_ranges[i])) * top)
                      for (i, _), (columns, _) in sums.items()] if forward else []
        short_columns = [(row_total - int(rows.min()), (config.columns - 2 * len(pair_ranges[j])) * top)
                         for (_, j), (_, rows) in sums.items()] if backward else []
        worst_rows = max(short_rows, key=lambda pair: pair[0] - pair[1], default=(0, 0))
        worst_columns = max(short_columns, key=lambda pair: pair[0] - pair[1], default=(0, 0))
        if worst_rows[0] <= worst_rows[1] and worst_columns[0] <= worst_columns[1]:
            break
        if worst_rows[0] > worst_rows[1]:
            row_chunks += 1
            why = (f": at {len(row_ranges)} row chunks a tile's columns fall {worst_rows[0]} levels short of the "
                   f"shared total ({column_total}) and its balance rows add at most {worst_rows[1]}")
        if worst_columns[0] > worst_columns[1]:
            pair_chunks += 1
            why = (f": at {len(pair_ranges)} neuron chunks a tile's rows fall {worst_columns[0]} levels short of "
                   f"the shared total ({row_total}) and its balance columns add at most {worst_columns[1]}")

    tiles = []
    for (i, j), core in zip(((i, j) for i in range(row_chunks) for j in range(pair_chunks)), cores):
        rows, pairs = row_ranges[i], pair_ranges[j]
        source = np.asarray(weights)
        block = (source[rows.start:rows.stop, pairs.start:pairs.stop] if direction == "backward"
                 else source[pairs.start:pairs.stop, rows.start:rows.stop])
        mapping = map_matrix(block, codes, config, direction, core, float_scale, column_total, row_total)
        tiles.append(Tile(mapping, rows, pairs))
    return TiledMapping(config=config, direction=direction, level_codes=tuple(int(c) for c in codes),
                        tiles=tuple(tiles), weights=levels_w, levels_per_unit=scale, row_chunks=row_chunks,
                        pair_chunks=pair_chunks, column_total=column_total, row_total=row_total)
