"""Stochastic binary neurons: Galois LFSR noise added at a neuron's output before a 1-bit decision, as
NeuRRAM sampled its RBM on chip (Wan et al., Nature 608, 2022; ../shared/references/neurram-host-notes.md).

The one definition of the decision, integers only, in output LSBs: with y the neuron's converted output,
b its bias, d_1..d_K and e the next K + 1 output bits of its LFSR as +-1 (bit 1 -> +1), it fires when

    2 (y + b) + 2 M (d_1 + ... + d_K) + e > 0

which never ties (the left side is odd). The chip's MVM sequencer decides so in its decide mode
(rtl/mvm.py, `models.mvm.MVMModel` with `StochasticLines`), the host's RBM sampler so in software
(`host.rbm.StochasticNeuron`): the same states give the same decisions, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..protocol import LFSR32_MASK, LFSR32_TAPS, NOISE_MAX
from .device import ModelInputError

__all__ = ["LFSR", "LFSR32_TAPS", "LFSR32_MASK", "LFSRError", "lfsr_bits", "noise_half_lsb", "decide",
           "StochasticLines", "NOISE_MAX"]

class LFSRError(ModelInputError):
    """An LFSR that cannot run: taps that do not fit its width, a zero state."""


def lfsr_bits(states: np.ndarray, count: int, mask: int) -> tuple[np.ndarray, np.ndarray]:
    """The next `count` output bits of Galois LFSRs in `states` ((count, *shape) uint8) and the states
    after them. One step: the output is bit 0; the state shifts right and, if the output was 1, is XORed
    with `mask`. A zero state stays zero (outputs 0): what a chip's unseeded LFSR does."""
    s, mask, one = np.asarray(states, dtype=np.uint64), np.uint64(mask), np.uint64(1)
    out = np.empty((count, *s.shape), dtype=np.uint8)
    for k in range(count):
        bit = s & one
        out[k] = bit
        s = (s >> one) ^ (mask * bit)
    return out, s


class LFSR:
    """A bank of Galois LFSRs of `width` bits stepped together, one per neuron (numpy-shaped `states`).

    One step: the output bit is the state's bit 0; the state shifts right by one, and when the output bit
    was 1 it is XORed with the mask of the taps (bit t - 1 for tap t, the width's own tap included). With
    `taps` a primitive polynomial (the default, `LFSR32_TAPS`) every non-zero state runs through all
    2^width - 1 non-zero states before it repeats."""

    def __init__(self, states, width: int = 32, taps=LFSR32_TAPS):
        if not 2 <= width <= 32 or max(taps) != width or min(taps) < 1:
            raise LFSRError(f"an LFSR of {width} bits takes taps 1..{width}, its width among them, not {taps}")
        states = np.array(states, dtype=np.uint64)
        if np.any(states == 0) or np.any(states >> np.uint64(width)):
            raise LFSRError(f"LFSR states are non-zero {width}-bit integers (zero never leaves zero)")
        self.width, self.taps = width, tuple(taps)
        self.mask = np.uint64(sum(1 << (t - 1) for t in set(taps)))
        self.states = states

    def bits(self, count: int) -> np.ndarray:
        """The next `count` output bits of every LFSR: (count, *states.shape) uint8."""
        out, self.states = lfsr_bits(self.states, count, int(self.mask))
        return out

    def matrix(self) -> np.ndarray:
        """The step as a width x width matrix over GF(2) (new state = M @ state mod 2): for jump-ahead and
        for proving the period."""
        w = self.width
        m = np.zeros((w, w), dtype=np.uint8)
        for row in range(w - 1):
            m[row, row + 1] = 1                                   # the shift right
        for row in range(w):
            if (int(self.mask) >> row) & 1:
                m[row, 0] ^= 1                                    # the output bit fed back into the taps
        return m


def noise_half_lsb(bits: np.ndarray, draws: int, magnitude: int) -> np.ndarray:
    """The noise of K = `draws` +-1 draws of `magnitude` LSBs plus a half-LSB dither, in half LSBs (odd
    integers), from K + 1 output bits per neuron ((K + 1, *shape), first drawn first)."""
    bits = np.asarray(bits).astype(np.int64)
    return 2 * magnitude * (2 * bits[:draws] - 1).sum(axis=0) + (2 * bits[draws] - 1)


def decide(output_lsb, bias_lsb, bits: np.ndarray, draws: int, magnitude: int) -> np.ndarray:
    """Fire (True) or not: 2 (y + b) + noise > 0, with the noise of `noise_half_lsb`. Integer outputs
    and biases decide bit for bit as the chip; floats (a float reference) through the same noise."""
    return 2 * (np.asarray(output_lsb) + np.asarray(bias_lsb)) + noise_half_lsb(bits, draws, magnitude) > 0


@dataclass
class StochasticLines:
    """A chip's decide-mode state, as its mvm_bias and mvm_lfsr windows hold it: one signed bias (output
    LSBs) and one 32-bit LFSR state per output line (`ChipConfig.mvm_lines`), and the MVM.noise register's
    K draws and M magnitude. A decide MVM steps the LFSRs of its outputs' lines in place."""
    bias: np.ndarray
    states: np.ndarray
    draws: int = 8
    magnitude: int = 2

    @classmethod
    def reset(cls, lines: int) -> "StochasticLines":
        """What a chip holds after its reset: zero biases and states, the register's K and M."""
        return cls(np.zeros(lines, dtype=np.int64), np.zeros(lines, dtype=np.uint64))

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        """0 or 1 for each output y_i of an MVM (line i): its line's LFSR stepped K + 1 times."""
        n = len(outputs)
        bits, self.states[:n] = lfsr_bits(self.states[:n], self.draws + 1, LFSR32_MASK)
        return decide(outputs, self.bias[:n], bits, self.draws, self.magnitude).astype(np.int64)
