"""Crossbar reads: Ohm and Kirchhoff, differential pairs, SLC groups, and IR drop in the wires.

Word lines (rows) carry the input voltages, bit lines (columns) collect the currents into a virtual
ground. Conductances are in microsiemens, voltages in volts, currents in microamperes (uS x V = uA).

With wire resistance, the array is a resistive network: each cell sits between a node on its word line
and a node on its bit line; word-line segments join neighbouring row nodes (the first one to the
driver), bit-line segments join neighbouring column nodes (the last one to the sense amplifier's
virtual ground). `IRDropSolver` solves that network by nodal analysis, eliminating word lines then bit-line
rows in the grid's own order, once per programmed array; the same topology badcrossbar (Joksas & Mehonic,
SoftwareX 2020) uses, which tests/ use as the oracle.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg
from scipy.linalg import lapack

from ..config import READ_DISTURB_LIMIT_V
from .device import ModelInputError

__all__ = ["Crossbar", "read_currents", "differential_currents", "slc_group_conductance", "ir_drop_currents",
           "IRDropSolver"]

#: Largest input voltage a read may put on a word line: the device's read-disturb limit. These reads
#: leave the cells untouched, so above it they would model a chip that does not exist.
V_READ_MAX = READ_DISTURB_LIMIT_V


def _real_array(value, what: str) -> np.ndarray:
    """`value` as a float array; anything that is not real numbers (strings, complex, objects) refused."""
    try:
        array = np.asarray(value)
    except ValueError as error:                           # ragged nested lists
        raise ModelInputError(f"{what} must be an array of real numbers: {error}") from None
    if array.dtype.kind not in "biuf":
        raise ModelInputError(f"{what} must be real numbers, got {array.dtype} values")
    return array.astype(float, copy=False)


def _check_voltages(v_rows, rows: int) -> np.ndarray:
    """Input voltages (rows,) or (batch, rows), finite and within the read limit."""
    v_rows = _real_array(v_rows, "input voltages")
    if v_rows.ndim not in (1, 2) or v_rows.shape[-1] != rows:
        raise ModelInputError(f"input voltages of shape {v_rows.shape} do not match {rows} rows "
                              "(give (rows,) or (batch, rows))")
    # NaN fails both comparisons, so one NaN voltage is refused rather than spreading to every column.
    if v_rows.size and not (-V_READ_MAX <= v_rows.min() and v_rows.max() <= V_READ_MAX):
        raise ModelInputError(f"read voltages must be finite and within +-{V_READ_MAX} V (the read-disturb "
                              f"limit), got {v_rows.min():.3g}..{v_rows.max():.3g} V")
    return v_rows


def _check_conductances(g_us) -> np.ndarray:
    """Conductances, rows x columns, finite and non-negative."""
    g_us = _real_array(g_us, "conductances")
    if g_us.ndim != 2:
        raise ModelInputError(f"conductances must be a 2-D rows x columns array, got shape {g_us.shape}")
    if np.any(g_us < 0) or not np.all(np.isfinite(g_us)):
        raise ModelInputError("conductances must be finite and non-negative")
    return g_us


def _check(g_us: np.ndarray, v_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g_us = _check_conductances(g_us)
    return g_us, _check_voltages(v_rows, g_us.shape[0])


def read_currents(g_us: np.ndarray, v_rows: np.ndarray) -> np.ndarray:
    """Column currents (uA) of an ideal crossbar: I_j = sum_i G_ij V_i. `v_rows` is (rows,) or (batch, rows)."""
    g_us, v_rows = _check(g_us, v_rows)
    return v_rows @ g_us


class Crossbar:
    """An ideal crossbar whose conductances are checked once, so each read only checks its inputs:
    the read itself is one matmul (the hot path of inference)."""

    def __init__(self, g_us: np.ndarray):
        self.g_us = _check_conductances(g_us)
        self.rows = self.g_us.shape[0]

    def currents(self, v_rows: np.ndarray) -> np.ndarray:
        """Column currents (uA) for input voltages (rows,) or (batch, rows)."""
        return _check_voltages(v_rows, self.rows) @ self.g_us


def differential_currents(g_plus_us: np.ndarray, g_minus_us: np.ndarray, v_rows: np.ndarray) -> np.ndarray:
    """Signed weights as conductance pairs: I = V (G+ - G-), one matmul on the difference."""
    g_plus_us = np.asarray(g_plus_us, dtype=float)
    if np.shape(g_minus_us) != g_plus_us.shape:
        raise ModelInputError(f"G+ {g_plus_us.shape} and G- {np.shape(g_minus_us)} differ in shape")
    g_minus_us, v_rows = _check(g_minus_us, v_rows)
    return v_rows @ (_check_conductances(g_plus_us) - g_minus_us)


def slc_group_conductance(states: np.ndarray, g_on_us: float, g_off_us: float, group: int) -> np.ndarray:
    """SPIRIT-style weights: each synapse is `group` binary cells in parallel per sign; `states` holds,
    per synapse, how many of them are ON (0..group). Returns the summed conductance."""
    if isinstance(group, (bool, np.bool_)) or not isinstance(group, (int, np.integer)) or group < 1:
        raise ModelInputError(f"an SLC group is a positive whole number of cells, got {group!r}")
    for name, g in (("g_on_us", g_on_us), ("g_off_us", g_off_us)):
        if not (isinstance(g, (int, float, np.integer, np.floating)) and np.isfinite(g) and g >= 0):
            raise ModelInputError(f"{name} = {g!r} must be a finite non-negative conductance")
    states = _real_array(states, "SLC group states")
    # Cells are ON or OFF: a group state counts whole cells, 1.5 is no state.
    if np.any(states != np.rint(states)) or np.any(states < 0) or np.any(states > group):
        raise ModelInputError(f"SLC group states must be whole numbers of cells ON, 0..{group}")
    return states * g_on_us + (group - states) * g_off_us


class IRDropSolver:
    """A crossbar with wire resistance, solved once for its conductances: the result is the exact linear
    map from word-line voltages to column currents, an effective conductance matrix `g_eff_us`
    (rows x columns, uS), so each read is one matmul like an ideal crossbar's, for one vector or a batch.

    The nodal matrix (2 x rows x columns nodes) is symmetric positive definite and has the grid's
    structure, which the elimination follows instead of a general sparse LU:

    1. Word line i is a tridiagonal chain (driver at column 0): eliminating it leaves the cells of row i,
       seen from their bit-line nodes, as a dense admittance Y_i (columns x columns) fed by a source
       s_i v_i. Word lines share no nodes, so this is exact and row by row.
    2. The bit lines then form a block-tridiagonal chain of rows, joined by one segment per column and
       ending in the sense amplifiers' virtual ground. Block Gaussian elimination from the top row down
       (a Cholesky of each SPD block) leaves the admittance S_i = gb I + X_i looking up from row i, and
       carries the sources down; the last row's voltages times gb are the column currents.

    Cost: about 3.3 n^4 flops of dense BLAS for an n x n array at construction (0.05 s at 128x128, under
    1 s at 256x256 on one core), then 2 n^2 per input vector. A general sparse LU of the 2 n^2-node
    matrix (SuperLU, which badcrossbar runs per call) costs about as much to factorize but thousands of
    times more per solve, and its batch solve is no faster than a loop; see `rram-cim bench models`.
    """

    def __init__(self, g_us: np.ndarray, r_word_ohm: float, r_bit_ohm: float):
        g_us = _check_conductances(g_us)
        for name, r in (("r_word_ohm", r_word_ohm), ("r_bit_ohm", r_bit_ohm)):
            # NaN and infinity fail the comparison too: the nodal matrix would be singular or NaN.
            if (isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, float, np.integer, np.floating))
                    or not 0 < r < np.inf):
                raise ModelInputError(f"{name} = {r!r}: wire segment resistances must be finite positive ohms "
                                      "(use read_currents for ideal wires)")
        self.shape = g_us.shape
        self.g_eff_us = _transfer_siemens(g_us * 1e-6, 1.0 / r_word_ohm, 1.0 / r_bit_ohm).T * 1e6

    def currents(self, v_rows: np.ndarray) -> np.ndarray:
        """Column output currents (uA) for input voltages (rows,) or (batch, rows)."""
        return _check_voltages(v_rows, self.shape[0]) @ self.g_eff_us


def _transfer_siemens(g: np.ndarray, gw: float, gb: float) -> np.ndarray:
    """Column currents per word-line volt (columns x rows, siemens) of cells `g` (S) with word-line and
    bit-line segment conductances `gw`, `gb` (S); see `IRDropSolver` for the method."""
    rows, columns = g.shape
    identity = np.eye(columns)
    # Word line i in banded (upper) form: -gw between neighbours, its cells and segments on the diagonal,
    # the first segment going to the driver and the last node having one segment only.
    word_line = np.empty((2, columns))
    word_line[0, 0], word_line[0, 1:] = 0.0, -gw
    sources = np.zeros((columns, rows))          # column k: drive of word line k, carried down to row i
    excess = np.zeros((columns, columns))        # X_i: admittance looking up from row i, beyond gb
    for i in range(rows):
        word_line[1] = g[i] + 2 * gw
        word_line[1, -1] = g[i, -1] + gw
        # One column has no off-diagonal band (and SciPy refuses an empty one).
        w_inv = linalg.solveh_banded(word_line if columns > 1 else word_line[1:], identity, check_finite=False)
        excess += np.diag(g[i]) - g[i][:, None] * w_inv * g[i][None, :]        # + Y_i
        sources[:, i] = g[i] * w_inv[:, 0] * gw                                   # s_i
        upper, info = lapack.dpotrf(excess + gb * identity, lower=0)              # S_i = gb I + X_i
        if info != 0:
            raise ModelInputError(f"the nodal matrix of this {rows}x{columns} array is not positive definite "
                                  f"in floating point (row {i}): wire segments of {1 / gw:.3g} and {1 / gb:.3g} "
                                  "ohm are too far from the cells' conductances")
        if i < rows - 1:
            # The next bit-line segment in series with S_i: gb S_i^-1 X_i, written so that no nearly equal
            # numbers are subtracted when the wires are much thicker than the cells (X_i << gb).
            ratio, _ = lapack.dpotrs(upper, excess, lower=0)                      # S_i^-1 X_i
            sources[:, :i + 1] -= ratio @ sources[:, :i + 1]                       # gb S_i^-1 = I - S_i^-1 X_i
            excess = gb * ratio
    last_row_volts, _ = lapack.dpotrs(upper, sources, lower=0)
    return gb * last_row_volts


def ir_drop_currents(g_us: np.ndarray, v_rows: np.ndarray, r_word_ohm: float, r_bit_ohm: float) -> np.ndarray:
    """Column currents (uA) with wire resistance per segment (see `IRDropSolver`)."""
    return IRDropSolver(g_us, r_word_ohm, r_bit_ohm).currents(v_rows)
