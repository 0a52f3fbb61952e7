"""Per-neuron calibration driven by data, NeuRRAM's way (Wan et al., Nature 608, 2022; the procedure as its
host code runs it is summarised in ../shared/references/neurram-host-notes.md), written for our chip.

1. **Offset trim, in hardware.** Random +-1 inputs (one-bit ternary MVMs) put a symmetric charge on every
   neuron, so an unbiased comparator answers +1 as often as -1. Each neuron's trim (a signed byte of
   threshold LSBs added to what its comparators see) is stepped against its measured bias, halving the
   step each round, until P(+1) - P(-1) is within the tolerance (NeuRRAM: P(out = 1) = 0.5 +- 0.05).
2. **Gain and offset, in the host.** A straight line per neuron through measured against expected outputs
   (`fit_lines`), outputs then corrected as (y - intercept) / slope (`LineFit.correct`), for what the trim
   cannot hold.

The procedures talk to anything with `mvm(core, x, direction, in_bits, out_bits, ..., threshold_code=)` and
`set_trims(core, codes)`: `host.chip.Chip`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import ChipConfig
from ..models.macro import TRIM_RANGE
from ..models.mvm import Direction, inputs

__all__ = ["OffsetCalibration", "calibrate_offsets", "LineFit", "fit_lines"]

#: Largest first step of the trim search, threshold LSBs: half the trim range, so the search spans it.
FIRST_STEP = 64


@dataclass
class OffsetCalibration:
    trims: np.ndarray            # trim codes per neuron, threshold LSBs, as written
    bias_before: np.ndarray      # P(+1) - P(-1) per neuron with zero trims
    bias_after: np.ndarray       # the same with the trims
    mvms: int                    # MVMs the search ran


def _bias(chip, core: int, direction: Direction, config: ChipConfig, trials: int, rng) -> np.ndarray:
    votes = np.zeros(config.neurons)
    for _ in range(trials):
        x = rng.choice(np.array([-1, 1]), inputs(config, direction))
        y = chip.mvm(core, x, direction.name.lower(), in_bits=1, out_bits=1, threshold_code=1)
        votes += np.sign(y[:config.neurons])
    return votes / trials


def calibrate_offsets(chip, core: int, config: ChipConfig, trials: int = 64, tolerance: float = 0.1,
                      seed: int = 0) -> OffsetCalibration:
    """Trim every neuron of `core` until its comparators answer random +-1 inputs without bias (forward
    MVMs: the neurons are the same in both directions). Leaves the trims written."""
    if isinstance(trials, bool) or not isinstance(trials, (int, np.integer)) or trials < 1:
        raise ValueError(f"trials must be a positive integer (MVMs per bias measurement), not {trials!r}")
    if not isinstance(tolerance, (int, float, np.floating)) or not 0 <= tolerance < 1:
        raise ValueError(f"tolerance is a bias P(+1) - P(-1) from 0 to 1, not {tolerance!r}")
    rng = np.random.default_rng(seed)
    direction = Direction.FORWARD
    trims = np.zeros(config.neurons, dtype=np.int64)
    chip.set_trims(core, trims)
    before = bias = _bias(chip, core, direction, config, trials, rng)
    mvms, step = trials, FIRST_STEP
    while step >= 1:
        # A comparator that answers +1 too often sees too much: trim it down, and the other way round.
        move = np.where(np.abs(bias) > tolerance, -np.sign(bias), 0).astype(np.int64) * step
        trims = np.clip(trims + move, TRIM_RANGE.start, TRIM_RANGE.stop - 1)
        chip.set_trims(core, trims)
        bias = _bias(chip, core, direction, config, trials, rng)
        mvms += trials
        step //= 2
    return OffsetCalibration(trims, before, bias, mvms)


@dataclass
class LineFit:
    slope: np.ndarray
    intercept: np.ndarray

    def correct(self, y) -> np.ndarray:
        """Outputs corrected by each neuron's line: (y - intercept) / slope."""
        return (np.asarray(y, dtype=float) - self.intercept) / self.slope


def fit_lines(measured, expected) -> LineFit:
    """Least-squares line per output (column) of `measured` (samples x outputs) against `expected`; an
    output that never moved keeps slope 1, intercept 0."""
    measured, expected = np.asarray(measured, dtype=float), np.asarray(expected, dtype=float)
    if measured.shape != expected.shape or measured.ndim != 2 or len(measured) < 2:
        raise ValueError(f"measured {measured.shape} and expected {expected.shape} outputs must be the same "
                         f"(samples x outputs) shape with at least 2 samples")
    slope, intercept = np.ones(measured.shape[1]), np.zeros(measured.shape[1])
    for k in range(measured.shape[1]):
        if np.ptp(expected[:, k]) > 0 and np.ptp(measured[:, k]) > 0:
            slope[k], intercept[k] = np.polyfit(expected[:, k], measured[:, k], 1)
    return LineFit(slope, intercept)
