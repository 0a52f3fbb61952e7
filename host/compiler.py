"""Network compiler, first piece: one layer of signed integer weights onto one core's differential
column pairs, balanced for voltage-mode neurons.

A voltage-mode neuron sees V_read · (Σ_driven G+ / ΣG+ − Σ_driven G− / ΣG−): each column settles to the
conductance-weighted average of its rows (NeuRRAM's sensing). Only when a pair's two column totals are
equal is the input proportional to Σ_driven (G+ − G−), i.e. to the weights; and only when every pair
has the same total do all neurons share one gain, so one threshold serves the layer. The compiler
reaches both with balance rows, rows no input ever drives: their cells cancel each pair's weight sum and
raise every pair to the same total. What cannot be balanced is refused with the limit it hit.

Weight w in -(L-1)..(L-1) maps to the level pair (max(w, 0), max(-w, 0)) of an L-level table of evenly
spaced conductance targets (ADC codes), level 0 being the lowest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import ChipConfig

__all__ = ["CompileError", "LayerMapping", "compile_layer"]


class CompileError(ValueError):
    """The network does not fit the chip; the message names the limit."""


@dataclass(frozen=True)
class LayerMapping:
    core: int
    #: ADC-code targets for every cell of the core (rows x columns), ready for `Programmer.program`.
    targets: np.ndarray
    #: Level index of every cell (rows x columns), for per-level recipes.
    levels: np.ndarray
    #: Row of each input, then the balance rows (never driven).
    input_rows: tuple[int, ...]
    balance_rows: tuple[int, ...]
    #: Every pair's column total, in levels above the lowest (the same for all pairs).
    column_total: int


def compile_layer(weights, level_codes, config: ChipConfig, core: int = 0,
                  balance_rows: int | None = None) -> LayerMapping:
    """Map `weights` (inputs x neurons, integers within ±(len(level_codes) - 1)) onto `core`.

    Inputs take rows 0.., neurons the column pairs (2n, 2n+1); the rows left over (or the last
    `balance_rows` of them) balance the columns.
    """
    weights = np.asarray(weights)
    codes = np.asarray(level_codes)
    top = len(codes) - 1
    if not 0 <= core < config.cores:
        raise CompileError(f"core {core} does not exist: the chip has {config.cores} cores")
    if weights.ndim != 2 or not np.issubdtype(weights.dtype, np.integer):
        raise CompileError("weights must be a 2-D integer array (inputs x neurons) of level differences")
    if codes.ndim != 1 or top < 1 or np.any(np.diff(codes) <= 0):
        raise CompileError("level_codes must list at least two increasing ADC codes")
    if np.any(np.diff(codes) != codes[1] - codes[0]):
        raise CompileError("level_codes must be evenly spaced: balancing counts levels, so a level must "
                           "add the same conductance everywhere")
    inputs, neurons = weights.shape
    if neurons > config.neurons or 2 * neurons > config.columns:
        raise CompileError(f"{neurons} neurons: a core has {config.neurons} (two columns each)")
    spare = config.rows - inputs
    if spare < 1:
        raise CompileError(f"{inputs} inputs leave no balance row: a core has {config.rows} rows")
    if np.abs(weights).max(initial=0) > top:
        raise CompileError(f"weights reach {np.abs(weights).max()}; {len(codes)} levels allow ±{top}")
    balance = spare if balance_rows is None else balance_rows
    if not 1 <= balance <= spare:
        raise CompileError(f"balance_rows must be 1..{spare}")

    positive, negative = np.maximum(weights, 0), np.maximum(-weights, 0)
    # Each pair's imbalance, and the common total every column must reach (in levels above level 0).
    imbalance = positive.sum(axis=0) - negative.sum(axis=0)
    capacity = balance * top
    worst = int(np.abs(imbalance).max(initial=0))
    if worst > capacity:
        neuron = int(np.abs(imbalance).argmax())
        raise CompileError(f"neuron {neuron}'s weights sum to {int(imbalance[neuron])} levels; {balance} balance "
                           f"rows of {top} levels offset at most {capacity}: regularize the column sums or "
                           "free more rows")
    # After cancelling the imbalance on the lighter side, raise both sides by the same amount.
    heavier = np.maximum(positive.sum(axis=0), negative.sum(axis=0))
    total = int(heavier.max(initial=0))
    add_positive = total - positive.sum(axis=0)
    add_negative = total - negative.sum(axis=0)
    if max(add_positive.max(initial=0), add_negative.max(initial=0)) > capacity:
        raise CompileError(f"the balance rows cannot raise every column to {total} levels (capacity "
                           f"{capacity}): free more rows or lower the largest column sum")

    levels = np.zeros((config.rows, config.columns), dtype=np.int64)
    levels[:inputs, 0:2 * neurons:2] = positive
    levels[:inputs, 1:2 * neurons:2] = negative
    rows = list(range(config.rows - balance, config.rows))
    for column_levels, side in ((add_positive, 0), (add_negative, 1)):
        for neuron, amount in enumerate(column_levels):
            # Spread `amount` levels over the balance rows, `top` at most per cell.
            fill = np.minimum(np.maximum(amount - top * np.arange(balance), 0), top)
            levels[rows, 2 * neuron + side] = fill
    return LayerMapping(core=core, targets=codes[levels], levels=levels, input_rows=tuple(range(inputs)),
                        balance_rows=tuple(rows), column_total=total)
