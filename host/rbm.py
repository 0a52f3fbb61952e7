"""A restricted Boltzmann machine on the chip's bidirectional MVM: digit recovery by Gibbs sampling.

NeuRRAM ran an RBM on its transposable array and recovered corrupted images with it, reducing the pixel
error by 70 % (Wan et al., "A compute-in-memory chip based on resistive random-access memory", Nature 608,
504-512, 2022; the way its host code samples is summarised in ../shared/references/neurram-host-notes.md).
This is the same idea on this chip's golden model, at the size of scikit-learn's 8x8 digits (docs/rbm.md).

* **Model.** 74 binary visible units (the 64 pixels, binarized at half scale, and 10 one-hot label units)
  and `hidden` binary hidden units; W is hidden x visible, b the visible and c the hidden biases. Trained by
  contrastive divergence (CD-k) in numpy, quantization- and noise-aware: every gradient step samples with
  W rounded to the cells' levels and a draw of each weight's conductance error after programming and a
  day of relaxation (`host.training.device_spread_us`), as NeuRRAM trained its RBM with weight noise.
* **Mapping.** W on the cells once, for both directions (`host.tiling.map_tiled(..., "both")`): the
  visible units on the rows, the hidden units on the column pairs. 74 rows need two of the reference
  chip's 64-row cores; their forward partial sums are added in the host. The biases are not on the cells:
  each neuron's decision adds its bias as an integer in output LSBs (`StochasticNeuron`).
* **Sampling.** visible -> hidden is a forward MVM (rows driven, column pairs sensed), hidden -> visible a
  backward MVM (column pairs driven, rows sensed) on the same cells. Every unit is a stochastic binary
  neuron: LFSR noise added at its input before a 1-bit decision, NeuRRAM's way of sampling on chip.
  Where a direction's outputs come from one core whole, the chip decides them (its MVM decide mode,
  `Chip.mvm(..., decide=True)`, docs/mvm.md); where they are two cores' partial sums, the MVMs convert to
  multi-bit outputs, the host adds them and `StochasticNeuron.decide` adds the noise and decides. Both are
  `models.stochastic.decide` on the same LFSR states, so they give equal samples bit for bit
  (`ChipSampler`; docs/rbm.md lists which decisions run where per config).
* **Recovery.** 20 % of the pixels flipped: every pixel is sampled, with an evidence term that pulls it
  towards what was observed (the log-odds of the flip model); a quarter occluded: the known pixels are
  clamped and the unknown sampled. The recovered image is the majority of the samples after burn-in; the
  label units, never clamped, classify it (argmax of their mean input after burn-in).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..config import ChipConfig
from ..models.stochastic import LFSR, LFSR32_TAPS, LFSRError, decide, noise_half_lsb
from ..protocol import Direction
from .compiler import CompileError
from .tiling import TiledMapping, map_tiled

__all__ = ["PIXELS", "LABELS", "VISIBLE", "LFSR", "LFSR32_TAPS", "LFSRError", "StochasticNeuron", "RBMError", "RBMSettings",
           "RBM", "train_fitting", "binarize", "visible_units", "flip_pixels", "occlude_quarter", "weight_sigma", "train_rbm",
           "RBMMapping", "map_rbm", "FloatSampler", "ChipSampler", "hidden_step", "visible_step", "recover",
           "Recovery", "pixel_errors", "error_reduction", "lfsr_seeds", "save_grid"]

PIXELS = 64
LABELS = 10
VISIBLE = PIXELS + LABELS

#: sigmoid(a) is within 0.01 of Phi(a / 1.702) (the normal CDF): the scale of Gaussian-like noise that makes
#: a thresholded unit fire with the logistic probability of a Boltzmann unit (Camilli, "Origin of the scaling
#: constant d = 1.7 in item response theory", J. Educational and Behavioral Statistics 19(3), 1994).
LOGISTIC_SIGMA = 1.702


class RBMError(ValueError):
    """An RBM request that cannot run: units that do not fit the cores, a corruption outside 0..1, ..."""


def _gf2_power(m: np.ndarray, exponent: int) -> np.ndarray:
    result = np.eye(len(m), dtype=np.int64)
    base = m.astype(np.int64)
    while exponent:
        if exponent & 1:
            result = (result @ base) & 1
        base = (base @ base) & 1
        exponent >>= 1
    return result.astype(np.uint8)


def lfsr_seeds(shape, seed: int, width: int = 32) -> np.ndarray:
    """Non-zero `width`-bit start states for a bank of LFSRs, one per entry of `shape`, from `seed`: the
    states a host would write into per-neuron seed registers. Drawn by numpy's Generator (reproducible),
    so the banks' streams start at unrelated points of the one 2^width - 1 cycle."""
    rng = np.random.default_rng(seed)
    return rng.integers(1, 1 << width, size=shape, dtype=np.uint64)


@dataclass(frozen=True)
class StochasticNeuron:
    """A binary neuron that fires with about the logistic probability of its input: LFSR noise added at its
    input before a 1-bit decision, as NeuRRAM sampled its RBM on chip (several +-1 LFSR draws times a
    magnitude, summed in before the threshold; neurram-host-notes.md).

    Integers only, in output LSBs: with membrane y (the MVM's output), bias b, draws d_1..d_K in {-1, +1}
    (LFSR bit 1 -> +1) and one more draw e as a half-LSB dither, the neuron fires when

        2 (y + b) + 2 M (d_1 + ... + d_K) + e > 0

    which never ties (the left side is odd), so a membrane of exactly minus the bias fires half the time.
    The noise M (d_1 + ... + d_K) + e / 2 has zero mean and standard deviation sqrt(M^2 K + 1/4) LSB: the
    sampling temperature is that over LOGISTIC_SIGMA in units of the input."""
    #: +-1 draws summed per decision (NeuRRAM used 4-8: neurram-host-notes.md).
    draws: int = 8
    #: LSBs per draw.
    magnitude_lsb: int = 2

    def __post_init__(self):
        for name in ("draws", "magnitude_lsb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise RBMError(f"{name} must be a positive integer, not {value!r}")

    @property
    def bits_per_decision(self) -> int:
        return self.draws + 1

    @property
    def sigma_lsb(self) -> float:
        return float(np.sqrt(self.magnitude_lsb ** 2 * self.draws + 0.25))

    def noise_half_lsb(self, lfsr: LFSR) -> np.ndarray:
        """The next noise of every neuron of `lfsr`'s bank, in half LSBs (odd integers)."""
        return noise_half_lsb(lfsr.bits(self.bits_per_decision), self.draws, self.magnitude_lsb)

    def decide(self, membrane_lsb, bias_lsb, lfsr: LFSR) -> np.ndarray:
        """Fire (True) or not for each neuron: integer membranes and biases decide bit for bit as the
        formula above (`models.stochastic.decide`, the chip's decide mode); floats (the float reference)
        through the same noise."""
        return decide(membrane_lsb, bias_lsb, lfsr.bits(self.bits_per_decision), self.draws, self.magnitude_lsb)


# ---- data and corruption ----------------------------------------------------------------------------------

def binarize(pixels) -> np.ndarray:
    """Pixels of 0..1 (host.training.load_digits) as binary units: on from half scale."""
    return (np.asarray(pixels, dtype=float) >= 0.5).astype(np.int64)


def visible_units(pixels, labels=None) -> np.ndarray:
    """(samples, 74) visible states: binarized pixels, then the one-hot label (zeros without labels)."""
    images = binarize(pixels)
    if images.ndim != 2 or images.shape[1] != PIXELS:
        raise RBMError(f"images are (samples, {PIXELS}) pixels, not {images.shape}")
    v = np.zeros((len(images), VISIBLE), dtype=np.int64)
    v[:, :PIXELS] = images
    if labels is not None:
        v[np.arange(len(images)), PIXELS + np.asarray(labels)] = 1
    return v


def _fraction(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 <= value <= 1:
        raise RBMError(f"{name} must be a fraction from 0 to 1, not {value!r}")
    return float(value)


def flip_pixels(images, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Binary images with round(fraction x 64) pixels of each flipped, chosen at random."""
    fraction = _fraction(fraction, "the flipped fraction")
    images = np.array(images, dtype=np.int64)
    count = int(round(fraction * images.shape[1]))
    for row in images:
        chosen = rng.choice(images.shape[1], count, replace=False)
        row[chosen] = 1 - row[chosen]
    return images


def occlude_quarter(images, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(occluded images, known mask): one of the four 4x4 quadrants of each 8x8 image, chosen at random,
    hidden and shown as background (0)."""
    images = np.array(images, dtype=np.int64)
    if images.ndim != 2 or images.shape[1] != PIXELS:
        raise RBMError(f"images are (samples, {PIXELS}) pixels, not {images.shape}")
    known = np.ones(images.shape, dtype=bool)
    for row, quadrant in zip(known, rng.integers(0, 4, len(images))):
        grid = row.reshape(8, 8)
        r, c = divmod(int(quadrant), 2)
        grid[4 * r:4 * r + 4, 4 * c:4 * c + 4] = False
    images[~known] = 0
    return images, known


# ---- the model and its training ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RBMSettings:
    hidden: int = 24
    epochs: int = 200
    batch: int = 32
    learning_rate: float = 0.02
    momentum: float = 0.7
    weight_decay: float = 1e-4
    cd_steps: int = 1
    #: Persistent contrastive divergence: the negative chains carry on from one batch to the next.
    persistent: bool = False
    #: |W| at most this (units of the energy): the top level of the cells.
    w_max: float = 2.5
    #: Sample with W rounded to levels and device noise drawn in every step (the noise-aware training).
    noise_aware: bool = True
    seed: int = 0


@dataclass
class RBM:
    w: np.ndarray                 # (hidden, visible)
    b_visible: np.ndarray         # (visible,)
    c_hidden: np.ndarray          # (hidden,)
    settings: RBMSettings
    history: list[float] = field(default_factory=list)   # reconstruction error per epoch

    @property
    def hidden(self) -> int:
        return len(self.c_hidden)


def _sigmoid(a):
    return 1.0 / (1.0 + np.exp(-np.clip(a, -60, 60)))


def weight_sigma(w, w_max: float, spread_us, level_step_us: float) -> np.ndarray:
    """Standard deviation of each weight as programmed, in W's units: the differential pair holds |w| on one
    cell (level |w| top / w_max) and the lowest level on the other, each with its level's conductance spread
    (`spread_us` per level, `host.training.device_spread_us`)."""
    spread = np.asarray(spread_us, dtype=float)
    top = len(spread) - 1
    level = np.abs(w) * top / w_max
    sigma_levels = np.sqrt(np.interp(level, np.arange(top + 1), spread) ** 2 + spread[0] ** 2) / level_step_us
    return sigma_levels * w_max / top


def train_rbm(visible, settings: RBMSettings = RBMSettings(), spread_us=None, level_step_us: float = 1.0,
              progress: Callable[[int, int, float], None] | None = None) -> RBM:
    """CD-k on binary `visible` states (samples, units). With `settings.noise_aware` and `spread_us`, the
    sampling in every step uses W rounded to the cells' levels (len(spread_us) of them over +-w_max) plus a
    draw of the devices' error (`weight_sigma`); the update goes to the float W (straight through).
    Deterministic for a seed."""
    v_data = np.asarray(visible, dtype=float)
    if settings.hidden < 1:
        raise RBMError(f"an RBM needs at least one hidden unit, not {settings.hidden}")
    rng = np.random.default_rng(settings.seed)
    units = v_data.shape[1]
    mean = np.clip(v_data.mean(axis=0), 0.01, 0.99)
    rbm = RBM(rng.normal(0, 0.01, (settings.hidden, units)), np.log(mean / (1 - mean)),
              np.zeros(settings.hidden), settings)
    top = None if spread_us is None else len(spread_us) - 1
    chains = (rng.random((settings.batch, units)) < mean).astype(float)
    velocity = [np.zeros_like(rbm.w), np.zeros_like(rbm.b_visible), np.zeros_like(rbm.c_hidden)]
    for epoch in range(settings.epochs):
        order = rng.permutation(len(v_data))
        errors = []
        for start in range(0, len(order), settings.batch):
            v0 = v_data[order[start:start + settings.batch]]
            w = rbm.w
            if settings.noise_aware and spread_us is not None:
                step = settings.w_max / top
                w = np.rint(w / step) * step
                w = w + rng.normal(size=w.shape) * weight_sigma(w, settings.w_max, spread_us, level_step_us)
            h0 = _sigmoid(v0 @ w.T + rbm.c_hidden)
            hk, vk = (_sigmoid(chains[:len(v0)] @ w.T + rbm.c_hidden), chains[:len(v0)]) if settings.persistent \
                else (h0, v0)
            for _ in range(settings.cd_steps):
                hs = (rng.random(hk.shape) < hk).astype(float)
                vk = _sigmoid(hs @ w + rbm.b_visible)
                vk = (rng.random(vk.shape) < vk).astype(float)
                hk = _sigmoid(vk @ w.T + rbm.c_hidden)
            if settings.persistent:
                chains[:len(v0)] = vk
            n = len(v0)
            grads = [(h0.T @ v0 - hk.T @ vk) / n - settings.weight_decay * rbm.w,
                     (v0 - vk).mean(axis=0), (h0 - hk).mean(axis=0)]
            for param, vel, grad in zip((rbm.w, rbm.b_visible, rbm.c_hidden), velocity, grads):
                vel *= settings.momentum
                vel += settings.learning_rate * grad
                param += vel
            np.clip(rbm.w, -settings.w_max, settings.w_max, out=rbm.w)
            errors.append(float(np.mean((v0 - vk) ** 2)))
        rbm.history.append(float(np.mean(errors)))
        if progress:
            progress(epoch + 1, settings.epochs, rbm.history[-1])
    return rbm


# ---- mapping onto the cores -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RBMMapping:
    """W on the cores for both directions, and how each direction's outputs read (`map_rbm`)."""
    tiled: TiledMapping
    #: Magnitude bits of the inputs: every active unit drives 2^in_bits - 1 samples (NeuRRAM's pulse
    #: multiplier), which lifts the signal above the comparators' offsets and the per-sample kT/C noise.
    in_bits: int
    out_bits: int
    threshold_forward: int
    threshold_backward: int
    #: Output LSBs per unit of W v (forward) and W^T h (backward), for a unit input.
    lsb_per_unit_forward: float
    lsb_per_unit_backward: float

    @property
    def pulses(self) -> int:
        return (1 << self.in_bits) - 1


def map_rbm(rbm: RBM, level_codes, config: ChipConfig, neuron: StochasticNeuron = StochasticNeuron(),
            in_bits: int = 3, out_bits: int = 6, cores=None) -> RBMMapping:
    """Put W (hidden x visible) on the cores for both directions at `rbm.settings.w_max` on the top level,
    and choose each direction's threshold so that one unit of input is `neuron.sigma_lsb / LOGISTIC_SIGMA`
    LSBs: the neuron's noise then samples at temperature 1. Refused with the sizes when the units do not fit."""
    hidden, visible = rbm.w.shape
    for name, bits in (("in_bits", in_bits), ("out_bits", out_bits)):
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
            raise RBMError(f"{name} must be an integer from 1 to 8 (an MVM's bits), not {bits!r}")
    cores = tuple(range(config.cores)) if cores is None else tuple(cores)
    rows_needed = -(-visible // (config.rows - 1))
    if hidden > config.neurons - 1:
        raise RBMError(f"{hidden} hidden units do not fit: a core serves at most {config.neurons - 1} hidden units "
                       f"({config.neurons} neurons, one column pair kept to balance the backward direction)")
    if rows_needed > len(cores):
        raise RBMError(f"{visible} visible units need {rows_needed} cores of {config.rows - 1} usable rows; "
                       f"{len(cores)} given ({config.rows} rows each, one kept to balance the forward direction)")
    top = len(level_codes) - 1
    try:
        tiled = map_tiled(np.clip(rbm.w, -rbm.settings.w_max, rbm.settings.w_max), level_codes, config, cores,
                          "both", levels_per_unit=top / rbm.settings.w_max)
    except CompileError as error:
        raise RBMError(f"an RBM of {visible} visible x {hidden} hidden units does not fit {len(cores)} cores: "
                       f"{error}") from None
    pulses = (1 << in_bits) - 1
    target = neuron.sigma_lsb / LOGISTIC_SIGMA                     # LSBs per unit of input at temperature 1
    codes, lsbs = [], []
    for direction in ("forward", "backward"):
        code = max(1, int(round(tiled.lsb_per_unit(direction, 1) * pulses / target)))
        codes.append(code)
        lsbs.append(tiled.lsb_per_unit(direction, code) * pulses)
    return RBMMapping(tiled, in_bits, out_bits, codes[0], codes[1], lsbs[0], lsbs[1])


def train_fitting(visible, settings: RBMSettings, level_codes, config: ChipConfig, spread_us=None,
                  level_step_us: float = 1.0, neuron: StochasticNeuron = StochasticNeuron(), cores=None,
                  progress: Callable[[int, int, float], None] | None = None) -> tuple[RBM, RBMMapping, list[int]]:
    """Hidden units as the cores allow: train with `settings.hidden` hidden units, and while the trained W
    cannot be mapped (`map_rbm` refuses it: too many hidden units, or rows the spare columns cannot
    balance) train again with one fewer. Returns the RBM, its mapping and the hidden counts refused."""
    refused = []
    hidden = min(settings.hidden, config.neurons - 1)
    refused.extend(range(settings.hidden, hidden, -1))
    while hidden >= 1:
        rbm = train_rbm(visible, replace(settings, hidden=hidden), spread_us, level_step_us, progress)
        try:
            return rbm, map_rbm(rbm, level_codes, config, neuron, cores=cores), refused
        except RBMError:
            if hidden == 1:
                raise
            refused.append(hidden)
            hidden -= 1
    raise RBMError(f"hidden = {settings.hidden}: an RBM needs at least one hidden unit")


# ---- samplers: the two half-steps' membranes --------------------------------------------------------------

class FloatSampler:
    """The float reference: exact W v and W^T h in numpy, in the chip's LSBs (floats), same biases; every
    decision in the host."""

    #: Membranes and biases are floats: evidence terms stay unrounded.
    integer = False

    def __init__(self, rbm: RBM, lsb_per_unit_forward: float, lsb_per_unit_backward: float):
        self.rbm = rbm
        self.lsb = (lsb_per_unit_forward, lsb_per_unit_backward)
        self.hidden_bias = rbm.c_hidden * self.lsb[0]
        self.visible_bias = rbm.b_visible * self.lsb[1]

    def hidden_membrane(self, v: np.ndarray) -> np.ndarray:
        return (v @ self.rbm.w.T) * self.lsb[0]

    def visible_membrane(self, h: np.ndarray) -> np.ndarray:
        return (h @ self.rbm.w) * self.lsb[1]

    def sample(self, direction: str, states, bias, neuron: StochasticNeuron, lfsr: LFSR):
        """(membranes, decisions) of one half-step: forward visible -> hidden, backward hidden -> visible."""
        y = self.hidden_membrane(states) if direction == "forward" else self.visible_membrane(states)
        return y, neuron.decide(y, bias, lfsr).astype(np.int64)


class ChipSampler:
    """The chip: W v as forward MVMs and W^T h as backward MVMs of the same cells (`host.chip.Chip` with the
    mapping's targets programmed), outputs in integer LSBs; biases rounded to integer LSBs.

    A direction whose every output comes from one core whole (no partial sums of two tiles to add) is
    decided on the chip: each MVM in decide mode (`Chip.mvm(..., decide=True)`), its lines' biases and LFSR
    states written before (`Chip.set_stochastic`) and the stepped states read back after
    (`Chip.lfsr_states`), so the host's LFSR banks carry on as if the host had decided. The same function
    as the host's `StochasticNeuron.decide` on the same converted outputs, bit for bit. That is every
    backward MVM (each core's rows are distinct visible units) and, when the visible units fit one core's
    rows, every forward MVM too. A direction split over cores (forward on the reference chip: 74 rows on
    two 64-row cores) converts multi-bit outputs, adds the partials and decides in the host.
    `decide_on_chip=False` decides everything in the host (as before decide mode)."""

    integer = True

    def __init__(self, chip, mapping: RBMMapping, rbm: RBM, decide_on_chip: bool = True):
        self.chip, self.mapping = chip, mapping
        self.lsb = (mapping.lsb_per_unit_forward, mapping.lsb_per_unit_backward)
        self.hidden_bias = np.rint(rbm.c_hidden * mapping.lsb_per_unit_forward).astype(np.int64)
        self.visible_bias = np.rint(rbm.b_visible * mapping.lsb_per_unit_backward).astype(np.int64)
        self.mvms = 0
        tiled = mapping.tiled
        # Forward outputs (hidden units) are whole on one core when the rows are one chunk; backward outputs
        # (visible units) when the column pairs are.
        whole = {"forward": tiled.row_chunks == 1, "backward": tiled.pair_chunks == 1}
        able = bool(decide_on_chip) and chip.config.mvm_decide
        #: Per direction: True where the chip decides, False where the host does.
        self.on_chip = {direction: able and whole[direction] for direction in whole}

    def _threshold(self, direction: str) -> int:
        return self.mapping.threshold_forward if direction == "forward" else self.mapping.threshold_backward

    def _run(self, states: np.ndarray, direction: str, threshold: int, tiles=None) -> np.ndarray:
        m = self.mapping
        states = np.atleast_2d(states)
        tiles = m.tiled.tiles if tiles is None else tiles
        out = np.stack([m.tiled.run(self.chip, (s * m.pulses).astype(np.int64), direction, m.in_bits, m.out_bits,
                                    "sar", threshold, tiles=tiles) for s in states])
        self.mvms += len(states) * len(tiles)
        return out

    def hidden_membrane(self, v: np.ndarray) -> np.ndarray:
        return self._run(v, "forward", self.mapping.threshold_forward)

    def visible_membrane(self, h: np.ndarray) -> np.ndarray:
        return self._run(h, "backward", self.mapping.threshold_backward)

    def label_membrane(self, h: np.ndarray) -> np.ndarray:
        """The label units' membranes (samples, LABELS): plain backward MVMs of the tiles holding label rows
        only. A decide MVM writes 0 or 1, so a chain decided on chip reads its labels' inputs this way."""
        tiles = [tile for tile in self.mapping.tiled.tiles if tile.rows.stop > PIXELS]
        return self._run(h, "backward", self.mapping.threshold_backward, tiles)[:, PIXELS:]

    def sample(self, direction: str, states, bias, neuron: StochasticNeuron, lfsr: LFSR):
        """(membranes, decisions) of one half-step: forward visible -> hidden, backward hidden -> visible.
        Membranes are None where the chip decided (`on_chip`)."""
        if not self.on_chip[direction]:
            y = self._run(states, direction, self._threshold(direction))
            return y, neuron.decide(y, bias, lfsr).astype(np.int64)
        return None, self._decide_on_chip(direction, np.atleast_2d(states), bias, neuron, lfsr)

    def _decide_on_chip(self, direction: str, states: np.ndarray, bias, neuron: StochasticNeuron,
                        lfsr: LFSR) -> np.ndarray:
        if lfsr.width != 32 or set(lfsr.taps) != set(LFSR32_TAPS):
            raise RBMError(f"the chip's LFSRs are 32-bit with taps {LFSR32_TAPS}, not {lfsr.width}-bit with {lfsr.taps}: "
                           f"decide in the host (decide_on_chip=False)")
        m, chip = self.mapping, self.chip
        units = m.tiled.sizes(direction)[0]
        if lfsr.states.shape != (len(states), units):
            raise RBMError(f"{len(states)} {direction} MVMs of {units} outputs take one LFSR per sample and unit, "
                           f"not a bank of {lfsr.states.shape}")
        bias = np.broadcast_to(np.asarray(bias, dtype=np.int64), (len(states), units))
        lines = chip.config.mvm_lines
        fired = np.zeros((len(states), units), dtype=np.int64)
        for s, x in enumerate(states):
            for tile in m.tiled.tiles:
                inputs, outputs = tile.lines(Direction[direction.upper()])
                count = outputs.stop - outputs.start
                # Lines beyond the tile's outputs step too; they get any non-zero seed (zero is refused).
                line_bias = np.zeros(lines, dtype=np.int64)
                line_bias[:count] = bias[s, outputs]
                seeds = np.ones(lines, dtype=np.uint64)
                seeds[:count] = lfsr.states[s, outputs]
                chip.set_stochastic(line_bias, seeds, neuron.draws, neuron.magnitude_lsb)
                core = tile.mapping
                y = chip.mvm(core.core, core.line_inputs((x[inputs] * m.pulses).astype(np.int64), direction),
                             direction, m.in_bits, m.out_bits, "sar", self._threshold(direction), decide=True)
                fired[s, outputs] = core.used_outputs(y, direction)
                lfsr.states[s, outputs] = chip.lfsr_states()[:count]
        self.mvms += len(states) * len(m.tiled.tiles)
        return fired


def hidden_step(sampler, v, neuron: StochasticNeuron, lfsr: LFSR) -> tuple[np.ndarray | None, np.ndarray]:
    """visible -> hidden: (membranes, sampled hidden states); membranes None where the chip decided."""
    return sampler.sample("forward", v, sampler.hidden_bias, neuron, lfsr)


def visible_step(sampler, h, neuron: StochasticNeuron, lfsr: LFSR,
                 evidence_lsb=0) -> tuple[np.ndarray | None, np.ndarray]:
    """hidden -> visible: (membranes, sampled visible states), membranes None where the chip decided;
    `evidence_lsb` is added to the biases."""
    return sampler.sample("backward", h, sampler.visible_bias + evidence_lsb, neuron, lfsr)


# ---- recovery -----------------------------------------------------------------------------------------------

@dataclass
class Recovery:
    images: np.ndarray            # (samples, 64) recovered binary pixels
    labels: np.ndarray            # (samples,) argmax of the label units' mean membrane after burn-in
    pixel_mean: np.ndarray        # (samples, 64) the sampled pixels' mean after burn-in


def recover(sampler, corrupted, known=None, flip_fraction: float | None = None,
            neuron: StochasticNeuron = StochasticNeuron(), steps: int = 50, burn_in: int = 10, seed: int = 0,
            progress: Callable[[int, int], None] | None = None) -> Recovery:
    """Gibbs sampling from `corrupted` binary images (samples, 64), the label units free.

    `known` (bool, same shape): those pixels are clamped, the others sampled (occlusion). `flip_fraction` f:
    every pixel is sampled with log((1 - f) / f) added to its input towards the value observed (subtracted
    where it was observed off): the posterior of a model where each pixel flips with probability f. The chain starts
    at the corrupted image, runs `steps` full steps (hidden, then visible), and the result is the majority of
    the visible samples of the steps after `burn_in`."""
    corrupted = np.asarray(corrupted, dtype=np.int64)
    if corrupted.ndim != 2 or corrupted.shape[1] != PIXELS:
        raise RBMError(f"corrupted images are (samples, {PIXELS}) pixels, not {corrupted.shape}")
    if not 0 <= burn_in < steps:
        raise RBMError(f"burn_in must be 0..steps - 1 (steps = {steps}), not {burn_in}")
    samples = len(corrupted)
    known = np.zeros(corrupted.shape, bool) if known is None else np.asarray(known, dtype=bool)
    evidence = np.zeros((samples, VISIBLE))
    if flip_fraction is not None:
        f = _fraction(flip_fraction, "the flip fraction")
        if not 0 < f < 0.5:
            raise RBMError(f"evidence needs a flip fraction strictly between 0 and 1/2, not {f}")
        evidence[:, :PIXELS] = np.log((1 - f) / f) * (2 * corrupted - 1) * sampler.lsb[1]
    if sampler.integer:
        evidence = np.rint(evidence).astype(np.int64)
    hidden = len(sampler.hidden_bias)
    lfsr_h = LFSR(lfsr_seeds((samples, hidden), seed))
    lfsr_v = LFSR(lfsr_seeds((samples, VISIBLE), seed + 1))
    v = np.zeros((samples, VISIBLE), dtype=np.int64)
    v[:, :PIXELS] = corrupted
    pixel_sum = np.zeros((samples, PIXELS))
    label_sum = np.zeros((samples, LABELS))
    for step in range(steps):
        _, h = hidden_step(sampler, v, neuron, lfsr_h)
        y, v_new = visible_step(sampler, h, neuron, lfsr_v, evidence)
        v = np.where(np.concatenate([known, np.zeros((samples, LABELS), bool)], axis=1), v, v_new)
        if step >= burn_in:
            pixel_sum += v[:, :PIXELS]
            label_sum += y[:, PIXELS:] if y is not None else sampler.label_membrane(h)
        if progress:
            progress(step + 1, steps)
    mean = pixel_sum / (steps - burn_in)
    images = np.where(known, corrupted, (mean > 0.5).astype(np.int64))
    return Recovery(images, label_sum.argmax(axis=1), mean)


def pixel_errors(images, originals) -> int:
    return int((np.asarray(images) != np.asarray(originals)).sum())


def error_reduction(corrupted, recovered, originals) -> float:
    """1 - (pixel errors after recovery) / (pixel errors of the corrupted input)."""
    before = pixel_errors(corrupted, originals)
    return float(1 - pixel_errors(recovered, originals) / before) if before else 0.0


def save_grid(path, rows: list[tuple[str, np.ndarray]], columns: int = 10) -> None:
    """A PNG of 8x8 binary images, one named row per entry of `rows` (e.g. corrupted / recovered / original)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(rows), columns, figsize=(columns * 0.8, len(rows) * 0.9), squeeze=False)
    for r, (name, images) in enumerate(rows):
        for c in range(columns):
            ax = axes[r][c]
            ax.imshow(np.asarray(images[c]).reshape(8, 8), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
