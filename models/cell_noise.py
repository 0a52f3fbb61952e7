"""Per-cell random streams that do not depend on the order cells are visited in.

The reference P&V model pulses every active cell at once; the RTL engine pulses one cell at a time.
For their pulse sequences to agree bit for bit, each cell must see the same random numbers either way:
the k-th draw of a stream for cell i depends only on (key, stream, i, k). That is a counter-based
generator (the idea of Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011), built
here from the SplitMix64 finalizer so it vectorizes in numpy.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["Stream", "CellNoise"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TO_UNIT = 2.0 ** -53


class Stream(enum.IntEnum):
    """Independent streams, one per physical source of randomness."""
    SET_COMPLIANCE = 0
    SET_THRESHOLD = 1
    RESET = 2
    READ = 3
    RELAX = 4
    FORM = 5


def _mix(x: np.ndarray) -> np.ndarray:
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


class CellNoise:
    """Standard normal draws per cell and stream, each cell with its own counter per stream."""

    def __init__(self, shape: tuple[int, int], rng: np.random.Generator):
        self.shape = shape
        self._key = np.uint64(rng.integers(0, 2 ** 63))
        self._cell = np.arange(shape[0] * shape[1], dtype=np.uint64).reshape(shape)
        self._count = np.zeros((len(Stream),) + tuple(shape), dtype=np.uint64)

    def _uniform(self, stream: Stream, cells: np.ndarray, count: np.ndarray, lane: int) -> np.ndarray:
        with np.errstate(over="ignore"):
            x = _mix(self._key ^ _mix(cells * np.uint64(4 * len(Stream)) + np.uint64(4 * stream + lane)))
            x = _mix(x ^ count)
        return ((x >> np.uint64(11)).astype(np.float64) + 0.5) * _TO_UNIT

    def normal(self, stream: Stream, mask: np.ndarray) -> np.ndarray:
        """One standard normal per cell where `mask` is true (zeros elsewhere); those cells' counters advance."""
        where = np.nonzero(mask)
        cells = self._cell[where]
        count = self._count[stream][where]
        u1 = self._uniform(stream, cells, count, 0)
        u2 = self._uniform(stream, cells, count, 1)
        out = np.zeros(self.shape)
        out[where] = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)      # Box-Muller
        self._count[stream][where] += np.uint64(1)
        return out
