"""The RBM on the chip's bidirectional MVM (host/rbm.py): the LFSR, the stochastic neuron, one Gibbs half-step
on the golden model against the mapping's expected outputs, a small recovery, and the refusals."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from rram_cim.config import NEURRAM_LIKE, REFERENCE
from rram_cim.host import rbm as R
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.training import load_digits
from rram_cim.models.recipes import LEVELS

LEVEL_CODES = np.array(LEVELS)
#: The 16-bit maximal-length polynomial x^16 + x^14 + x^13 + x^11 + 1, whose Galois mask is 0xB400.
TAPS16 = (16, 14, 13, 11)


def _order_divides(lfsr_matrix: np.ndarray, exponent: int) -> bool:
    return np.array_equal(R._gf2_power(lfsr_matrix, exponent), np.eye(len(lfsr_matrix), dtype=np.uint8))


# ---- LFSR -------------------------------------------------------------------------------------------------

def test_lfsr_masks_follow_the_taps():
    assert int(R.LFSR([1], 16, TAPS16).mask) == 0xB400
    assert int(R.LFSR([1]).mask) == 0x80200003


def test_lfsr_steps_as_a_galois_register():
    # From 0xACE1 the 16-bit register outputs its bit 0 (1), shifts to 0x5670 and XORs in 0xB400: 0xE270.
    lfsr = R.LFSR([0xACE1], 16, TAPS16)
    assert lfsr.bits(1)[0, 0] == 1
    assert int(lfsr.states[0]) == 0xE270
    # And the next two, worked by hand: 0xE270 -> bit 0, 0x7138; 0x7138 -> bit 0, 0x389C.
    assert lfsr.bits(2)[:, 0].tolist() == [0, 0]
    assert int(lfsr.states[0]) == 0x389C


def test_lfsr_bank_steps_each_register_independently():
    states = [0xACE1, 0x1, 0xFFFF]
    bank = R.LFSR(states, 16, TAPS16).bits(40)
    for k, state in enumerate(states):
        assert np.array_equal(bank[:, k], R.LFSR([state], 16, TAPS16).bits(40)[:, 0])


def test_lfsr16_period_is_65535():
    period = (1 << 16) - 1
    lfsr = R.LFSR([0xACE1], 16, TAPS16)
    bits = lfsr.bits(period)
    assert int(lfsr.states[0]) == 0xACE1
    assert int(bits.sum()) == 1 << 15                    # an m-sequence has 2^(n-1) ones per period
    for prime in (3, 5, 17, 257):                        # 65535 = 3 * 5 * 17 * 257: no shorter cycle
        short = R.LFSR([0xACE1], 16, TAPS16)
        short.bits(period // prime)
        assert int(short.states[0]) != 0xACE1


def test_lfsr32_matrix_steps_like_the_register_and_has_the_full_period():
    lfsr = R.LFSR(R.lfsr_seeds(5, seed=3))
    m = lfsr.matrix().astype(np.int64)
    before = lfsr.states.copy()
    lfsr.bits(1)
    for start, after in zip(before, lfsr.states):
        vector = (int(start) >> np.arange(32)) & 1
        assert int(((m @ vector) & 1) @ (1 << np.arange(32, dtype=np.int64))) == int(after)
    period = (1 << 32) - 1
    assert _order_divides(lfsr.matrix(), period)
    for prime in (3, 5, 17, 257, 65537):
        assert not _order_divides(lfsr.matrix(), period // prime)


def test_lfsr_refuses_a_zero_state_and_bad_taps():
    with pytest.raises(R.LFSRError, match="non-zero"):
        R.LFSR([0, 1])
    with pytest.raises(R.LFSRError, match="taps"):
        R.LFSR([1], 16, (15, 2))


# ---- the stochastic neuron -------------------------------------------------------------------------------

def test_neuron_decides_by_its_integer_formula():
    neuron = R.StochasticNeuron(draws=8, magnitude_lsb=2)
    seeds = R.lfsr_seeds(50, seed=7)
    membrane = np.arange(-25, 25)
    bias = np.full(50, 3)
    bits = R.LFSR(seeds).bits(9).astype(np.int64)
    noise = 2 * 2 * (2 * bits[:8] - 1).sum(axis=0) + (2 * bits[8] - 1)
    expected = 2 * (membrane + bias) + noise > 0
    assert np.array_equal(neuron.decide(membrane, bias, R.LFSR(seeds)), expected)


def test_neuron_fires_with_the_logistic_probability_at_temperature_one():
    neuron = R.StochasticNeuron()
    lsb_per_unit = neuron.sigma_lsb / R.LOGISTIC_SIGMA
    lfsr = R.LFSR(R.lfsr_seeds(4000, seed=1))
    for membrane in (-12, -6, -2, 0, 2, 6, 12):
        rate = np.mean([neuron.decide(np.full(4000, membrane), 0, lfsr).mean() for _ in range(3)])
        assert abs(rate - 1 / (1 + np.exp(-membrane / lsb_per_unit))) < 0.03, membrane


# ---- one Gibbs half-step on the golden model --------------------------------------------------------------

def _random_rbm(hidden=12, seed=0):
    rng = np.random.default_rng(seed)
    settings = R.RBMSettings(hidden=hidden)
    w = np.clip(rng.normal(0, 1.0, (hidden, R.VISIBLE)), -settings.w_max, settings.w_max)
    return R.RBM(w, rng.normal(0, 1, R.VISIBLE), rng.normal(0, 1, hidden), settings)


def test_half_steps_on_the_golden_model_equal_the_mappings_expected_outputs():
    rbm = _random_rbm()
    mapping = R.map_rbm(rbm, LEVEL_CODES, REFERENCE)
    chip = Chip(ModelTransport(REFERENCE, seed=0, ideal=True), REFERENCE)      # exact cells, noise-free neurons
    mapping.tiled.program(chip)
    sampler = R.ChipSampler(chip, mapping, rbm, decide_on_chip=False)         # membranes in both directions
    rng = np.random.default_rng(1)
    v = rng.integers(0, 2, (3, R.VISIBLE))
    h = rng.integers(0, 2, (3, rbm.hidden))
    neuron, seeds = R.StochasticNeuron(), R.lfsr_seeds((3, rbm.hidden), seed=2)
    y, fired = R.hidden_step(sampler, v, neuron, R.LFSR(seeds))
    expected = np.stack([mapping.tiled.expected(s * mapping.pulses, "forward", mapping.out_bits,
                                                mapping.threshold_forward) for s in v])
    assert np.array_equal(y, expected)
    assert np.abs(expected).max() > 3                                        # not a trivially zero product
    assert np.array_equal(fired, neuron.decide(expected, sampler.hidden_bias, R.LFSR(seeds)))
    y_back, _ = R.visible_step(sampler, h, neuron, R.LFSR(R.lfsr_seeds((3, R.VISIBLE), seed=3)))
    expected_back = np.stack([mapping.tiled.expected(s * mapping.pulses, "backward", mapping.out_bits,
                                                     mapping.threshold_backward) for s in h])
    assert np.array_equal(y_back, expected_back)
    # The chip's integer membranes track the float products at the mapping's scale (quantization aside).
    scale = mapping.lsb_per_unit_forward
    assert np.abs(y - (v @ rbm.w.T) * scale).max() < 0.25 * scale * rbm.hidden


# ---- decisions on the chip (decide mode) where a direction's outputs come from one core whole --------------

def _samplers(config, hidden, seed=0):
    """Two samplers on two noisy model chips of one seed: the host deciding everything, the chip where it can."""
    rbm = _random_rbm(hidden, seed)
    mapping = R.map_rbm(rbm, LEVEL_CODES, config)
    samplers = []
    for on_chip in (False, True):
        chip = Chip(ModelTransport(config, seed=seed, neuron_noise=True), config)
        mapping.tiled.program(chip)
        samplers.append(R.ChipSampler(chip, mapping, rbm, decide_on_chip=on_chip))
    return rbm, samplers


@pytest.mark.parametrize("config, hidden, on_chip", [
    (REFERENCE, 12, {"forward": False, "backward": True}),       # 74 visible rows on two cores: forward partials
    (NEURRAM_LIKE, 12, {"forward": True, "backward": True}),     # everything on one 256-row core
    (NEURRAM_LIKE, 127, {"forward": True, "backward": False}),   # 128 column pairs on two cores: backward partials
], ids=["reference", "neurram-like", "neurram-like-127-hidden"])
def test_chip_decisions_and_lfsr_states_equal_the_hosts_on_the_same_converted_outputs(config, hidden, on_chip):
    rbm, (host, chip) = _samplers(config, hidden)
    assert host.on_chip == {"forward": False, "backward": False} and chip.on_chip == on_chip
    rng = np.random.default_rng(4)
    v = rng.integers(0, 2, (3, R.VISIBLE))
    evidence = rng.integers(-4, 5, (3, R.VISIBLE))                 # per-digit biases, as the flip evidence
    neuron, results = R.StochasticNeuron(), []
    for sampler in (host, chip):
        lfsr_h, lfsr_v = R.LFSR(R.lfsr_seeds((3, hidden), 5)), R.LFSR(R.lfsr_seeds((3, R.VISIBLE), 6))
        y_h, h = R.hidden_step(sampler, v, neuron, lfsr_h)
        y_v, v_new = R.visible_step(sampler, h, neuron, lfsr_v, evidence)
        results.append((h, v_new, lfsr_h.states, lfsr_v.states, y_h, y_v))
    for ours, theirs in zip(results[0][:4], results[1][:4]):
        assert np.array_equal(ours, theirs)
    assert not np.array_equal(results[1][3], R.lfsr_seeds((3, R.VISIBLE), 6))      # the chip stepped them
    assert 0 < results[1][1].mean() < 1 and 0 < results[1][0].mean() < 1
    assert (results[1][4] is None) == on_chip["forward"] and (results[1][5] is None) == on_chip["backward"]


def test_a_chip_without_decide_mode_or_told_not_to_decides_in_the_host():
    rbm = _random_rbm()
    config = replace(NEURRAM_LIKE, mvm_stochastic=False)
    mapping = R.map_rbm(rbm, LEVEL_CODES, config)
    chip = Chip(ModelTransport(config, seed=0), config)
    assert R.ChipSampler(chip, mapping, rbm).on_chip == {"forward": False, "backward": False}


def test_chip_decisions_refuse_an_lfsr_the_chip_does_not_have():
    rbm = _random_rbm()
    mapping = R.map_rbm(rbm, LEVEL_CODES, NEURRAM_LIKE)
    sampler = R.ChipSampler(Chip(ModelTransport(NEURRAM_LIKE, seed=0), NEURRAM_LIKE), mapping, rbm)
    with pytest.raises(R.RBMError, match="32-bit"):
        R.hidden_step(sampler, np.zeros((1, R.VISIBLE), dtype=int), R.StochasticNeuron(), R.LFSR([[1] * 12], 16, TAPS16))


def test_label_membranes_of_a_chip_decided_chain_are_the_backward_mvms_label_outputs():
    rbm = _random_rbm()
    mapping = R.map_rbm(rbm, LEVEL_CODES, REFERENCE)
    chip = Chip(ModelTransport(REFERENCE, seed=0, ideal=True), REFERENCE)
    mapping.tiled.program(chip)
    sampler = R.ChipSampler(chip, mapping, rbm)
    h = np.random.default_rng(7).integers(0, 2, (3, rbm.hidden))
    labels = sampler.label_membrane(h)
    assert sampler.mvms == 3                                   # only the core holding the label rows
    assert np.array_equal(labels, sampler.visible_membrane(h)[:, R.PIXELS:]) and np.abs(labels).max() > 0


# ---- a tiny recovery --------------------------------------------------------------------------------------

def test_a_tiny_run_on_the_noisy_chip_model_reduces_pixel_errors_on_flipped_digits():
    data = load_digits(0)
    rbm = R.train_rbm(R.visible_units(data.train_x, data.train_y), R.RBMSettings(hidden=16, epochs=25))
    mapping = R.map_rbm(rbm, LEVEL_CODES, REFERENCE)
    chip = Chip(ModelTransport(REFERENCE, seed=0, neuron_noise=True), REFERENCE)
    mapping.tiled.program(chip)
    for core in mapping.tiled.cores:
        chip.calibrate(core, trials=32)
    test = R.binarize(data.test_x[:16])
    flipped = R.flip_pixels(test, 0.2, np.random.default_rng(0))
    recovery = R.recover(R.ChipSampler(chip, mapping, rbm), flipped, flip_fraction=0.2, steps=16, burn_in=4)
    assert R.pixel_errors(flipped, test) == 16 * 13
    assert R.error_reduction(flipped, recovery.images, test) > 0.2


def test_occlusion_clamps_the_known_pixels():
    images = R.binarize(load_digits(0).test_x[:20])
    occluded, known = R.occlude_quarter(images, np.random.default_rng(0))
    assert np.all(known.sum(axis=1) == 48)
    assert np.array_equal(occluded[known], images[known]) and not occluded[~known].any()
    recovery = R.recover(R.FloatSampler(_random_rbm(), 3.0, 3.0), occluded, known=known, steps=4, burn_in=1)
    assert np.array_equal(recovery.images[known], images[known])


# ---- refusals ---------------------------------------------------------------------------------------------

def test_hidden_units_beyond_a_cores_neurons_are_refused():
    with pytest.raises(R.RBMError, match="32 hidden units do not fit"):
        R.map_rbm(_random_rbm(hidden=32), LEVEL_CODES, REFERENCE)


def test_visible_units_beyond_the_cores_rows_are_refused():
    with pytest.raises(R.RBMError, match="74 visible units need 2 cores"):
        R.map_rbm(_random_rbm(), LEVEL_CODES, REFERENCE, cores=(0,))


def test_mvm_bits_outside_1_to_8_are_refused():
    with pytest.raises(R.RBMError, match="in_bits must be an integer from 1 to 8"):
        R.map_rbm(_random_rbm(), LEVEL_CODES, REFERENCE, in_bits=0)
    with pytest.raises(R.RBMError, match="out_bits must be an integer from 1 to 8"):
        R.map_rbm(_random_rbm(), LEVEL_CODES, REFERENCE, out_bits=9)


def test_weights_that_cannot_be_balanced_are_refused_with_the_sizes():
    rbm = _random_rbm(hidden=30)
    rbm.w[:, :10] = 0.0                  # rows with almost no weight: the balance columns cannot lift them
    with pytest.raises(R.RBMError, match="74 visible x 30 hidden units does not fit 2 cores"):
        R.map_rbm(rbm, LEVEL_CODES, REFERENCE)


def test_training_takes_as_many_hidden_units_as_the_cores_allow():
    data = load_digits(0)
    visible = R.visible_units(data.train_x[:400], data.train_y[:400])
    settings = R.RBMSettings(hidden=33, epochs=30, learning_rate=0.05)
    rbm, mapping, refused = R.train_fitting(visible, settings, LEVEL_CODES, REFERENCE)
    # 33 and 32 exceed a core's 31 usable neurons; then trained W that cannot be balanced are refused.
    assert refused[:2] == [33, 32] and refused == list(range(33, rbm.hidden, -1)) and len(refused) > 2
    assert mapping.tiled.sizes("forward") == (rbm.hidden, R.VISIBLE)
    with pytest.raises(R.RBMError, match="does not fit 2 cores"):
        R.map_rbm(R.train_rbm(visible, replace(settings, hidden=rbm.hidden + 1)), LEVEL_CODES, REFERENCE)


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), True])
def test_corruption_fractions_outside_0_to_1_are_refused(fraction):
    with pytest.raises(R.RBMError, match="fraction from 0 to 1"):
        R.flip_pixels(np.zeros((2, 64), dtype=int), fraction, np.random.default_rng(0))


def test_flip_evidence_needs_a_fraction_below_one_half():
    with pytest.raises(R.RBMError, match="strictly between 0 and 1/2"):
        R.recover(R.FloatSampler(_random_rbm(), 3.0, 3.0), np.zeros((1, 64), dtype=int), flip_fraction=0.6)
    with pytest.raises(R.RBMError, match="fraction from 0 to 1"):
        R.recover(R.FloatSampler(_random_rbm(), 3.0, 3.0), np.zeros((1, 64), dtype=int), flip_fraction=2.0)
