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

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_MASK64 = (1 << 64) - 1
_TO_UNIT = 2.0 ** -53
#: Below this many cells Python integers beat numpy's per-call overhead; both give the same bits.
_SMALL = 8


class Stream(enum.IntEnum):
    """Independent streams, one per physical source of randomness."""
    SET_COMPLIANCE = 0
    SET_THRESHOLD = 1
    RESET = 2
    READ = 3
    RELAX = 4
    FORM = 5


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finalizer on uint64 arrays (array arithmetic wraps modulo 2**64 silently)."""
    z = x + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def _mix_int(x: int) -> int:
    """The same finalizer on a Python integer."""
    z = (x + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def _box_muller(u1, u2):
    """A standard normal from two uniforms in (0, 1), for arrays or floats alike."""
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


class CellNoise:
    """Standard normal draws per cell and stream, each cell with its own counter per stream."""

    def __init__(self, shape: tuple[int, int], rng: np.random.Generator):
        self.shape = shape
        self._key = np.uint64(rng.integers(0, 2 ** 63))
        self._count = np.zeros((len(Stream),) + tuple(shape), dtype=np.uint64)

    def _bits_one(self, stream: Stream, cell: int, count: int, lane: int) -> int:
        """The same 53 bits as `_bits` for one cell and lane, in Python integers."""
        return _mix_int(_mix_int(int(self._key) ^ _mix_int(cell * 4 * len(Stream) + 4 * stream + lane)) ^ count) >> 11

    def _bits(self, stream: Stream, cells: np.ndarray, count: np.ndarray) -> np.ndarray:
        """53 random bits per cell for each of the two Box-Muller lanes: shape (2, cells)."""
        base = 4 * len(Stream)
        if cells.size <= _SMALL:
            return np.array([[self._bits_one(stream, c, k, lane) for c, k in zip(cells.tolist(), count.tolist())]
                             for lane in (0, 1)], dtype=np.float64).reshape(2, cells.size)
        lanes = np.array([[4 * stream], [4 * stream + 1]], dtype=np.uint64)
        x = _mix(self._key ^ _mix(cells.astype(np.uint64) * np.uint64(base) + lanes))
        return (_mix(x ^ count) >> np.uint64(11)).astype(np.float64)

    def draw_one(self, stream: Stream, cell: int) -> float:
        """`draw` for one flat cell index, in Python integers and floats (the same bits)."""
        flat = self._count[stream].reshape(-1)
        count = int(flat[cell])
        u1, u2 = ((float(self._bits_one(stream, cell, count, lane)) + 0.5) * _TO_UNIT for lane in (0, 1))
        flat[cell] += np.uint64(1)
        return float(_box_muller(u1, u2))

    def draw(self, stream: Stream, cells: np.ndarray) -> np.ndarray:
        """One standard normal for each flat cell index in `cells` (distinct); their counters advance."""
        flat = self._count[stream].reshape(-1)
        cells = np.asarray(cells, dtype=np.int64)
        count = flat[cells]
        u1, u2 = (self._bits(stream, cells, count) + 0.5) * _TO_UNIT
        flat[cells] += np.uint64(1)
        return _box_muller(u1, u2)

    def normal(self, stream: Stream, mask: np.ndarray) -> np.ndarray:
        """One standard normal per cell where `mask` is true (zeros elsewhere); those cells' counters advance."""
        cells = np.flatnonzero(mask)
        out = np.zeros(self.shape)
        out.reshape(-1)[cells] = self.draw(stream, cells)
        return out
