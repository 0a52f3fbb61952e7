"""Crossbar reads: Ohm and Kirchhoff, differential pairs, SLC groups, and IR drop in the wires.

Word lines (rows) carry the input voltages, bit lines (columns) collect the currents into a virtual
ground. Conductances are in microsiemens, voltages in volts, currents in microamperes (uS x V = uA).

With wire resistance, the array is a resistive network: each cell sits between a node on its word line
and a node on its bit line; word-line segments join neighbouring row nodes (the first one to the
driver), bit-line segments join neighbouring column nodes (the last one to the sense amplifier's
virtual ground). `ir_drop_currents` solves that network by nodal analysis as one sparse linear system,
the same topology badcrossbar (Joksas & Mehonic, SoftwareX 2020) uses, which tests/ use as the oracle.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg

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
    """Nodal analysis of a crossbar with wire resistance, factorized once for a conductance matrix so
    that many input vectors solve cheaply (one back-substitution each)."""

    def __init__(self, g_us: np.ndarray, r_word_ohm: float, r_bit_ohm: float):
        g_us = _check_conductances(g_us)
        for name, r in (("r_word_ohm", r_word_ohm), ("r_bit_ohm", r_bit_ohm)):
            # NaN and infinity fail the comparison too: the nodal matrix would be singular or NaN.
            if (isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, float, np.integer, np.floating))
                    or not 0 < r < np.inf):
                raise ModelInputError(f"{name} = {r!r}: wire segment resistances must be finite positive ohms "
                                      "(use read_currents for ideal wires)")
        rows, columns = g_us.shape
        self.shape = (rows, columns)
        g = g_us * 1e-6                          # siemens, so currents come out in amperes
        gw, gb = 1.0 / r_word_ohm, 1.0 / r_bit_ohm
        self._gb = gb
        n = rows * columns
        word = np.arange(n).reshape(rows, columns)          # word-line node of cell (i, j)
        bit = word + n                                       # bit-line node of cell (i, j)
        entries_r, entries_c, values = [], [], []

        def add(r, c, v):
            entries_r.append(np.ravel(r))
            entries_c.append(np.ravel(c))
            values.append(np.ravel(np.broadcast_to(v, np.shape(r))))

        # Cells: conductance between the two nodes.
        add(word, word, g)
        add(bit, bit, g)
        add(word, bit, -g)
        add(bit, word, -g)
        # Word-line segments: (i, j-1) - (i, j); the first segment goes to the driver (a source term).
        add(word[:, 1:], word[:, 1:], gw)
        add(word[:, :-1], word[:, :-1], gw)
        add(word[:, 1:], word[:, :-1], -gw)
        add(word[:, :-1], word[:, 1:], -gw)
        add(word[:, 0], word[:, 0], gw)
        # Bit-line segments: (i, j) - (i+1, j); the last one goes to virtual ground.
        add(bit[1:, :], bit[1:, :], gb)
        add(bit[:-1, :], bit[:-1, :], gb)
        add(bit[1:, :], bit[:-1, :], -gb)
        add(bit[:-1, :], bit[1:, :], -gb)
        add(bit[-1, :], bit[-1, :], gb)
        matrix = sparse.csc_matrix((np.concatenate(values), (np.concatenate(entries_r),
                                                             np.concatenate(entries_c))), shape=(2 * n, 2 * n))
        # The matrix is symmetric: a minimum-degree ordering of A^T + A fills in least.
        self._lu = sparse_linalg.splu(matrix, permc_spec="MMD_AT_PLUS_A")
        self._drive = word[:, 0]
        self._out = bit[-1, :]
        self._gw = gw
        self._n = n

    def currents(self, v_rows: np.ndarray) -> np.ndarray:
        """Column output currents (uA) for input voltages (rows,) or (batch, rows)."""
        v_rows = _check_voltages(v_rows, self.shape[0])
        single = v_rows.ndim == 1
        batch = np.atleast_2d(v_rows)
        rhs = np.zeros((2 * self._n, batch.shape[0]))
        rhs[self._drive, :] = batch.T * self._gw
        nodes = self._lu.solve(rhs)
        out = (nodes[self._out, :] * self._gb).T * 1e6
        return out[0] if single else out


def ir_drop_currents(g_us: np.ndarray, v_rows: np.ndarray, r_word_ohm: float, r_bit_ohm: float) -> np.ndarray:
    """Column currents (uA) with wire resistance per segment (see `IRDropSolver`)."""
    return IRDropSolver(g_us, r_word_ohm, r_bit_ohm).currents(v_rows)
