"""Training in the chip's terms: the rate code, the gradients of the voltage-mode network, and that the
mean-field network it trains predicts what the spiking chip model then does."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.compiler import compile_network
from rram_cim.host.recipes import level_recipes
from rram_cim.host.training import (Digits, TrainSettings, _gradients, device_spread_us, load_digits,
                                    load_networks, neuron_gain, rate_code, save_networks, train)
from rram_cim.models.recipes import LEVELS

LEVEL_US = np.array(LEVELS) * REFERENCE.us_per_adc_lsb


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=3)


@pytest.fixture(scope="module")
def trained(digits):
    return train(REFERENCE, digits, LEVEL_US, TrainSettings(epochs=30, seed=3))


def test_rate_code_spikes_round_steps_times_x_evenly():
    x = np.linspace(0, 1, 17)
    spikes = rate_code(x, 16)
    assert spikes.shape == (16, 17)
    assert np.array_equal(spikes.sum(axis=0), np.floor(16 * x + 0.5))
    half = spikes[:, 8]                                   # x = 1/2: every other step
    assert np.array_equal(half, np.arange(16) % 2 == 0)
    with pytest.raises(ValueError, match="0..1"):
        rate_code(np.array([1.5]), 4)


def test_digits_split_is_stratified_and_disjoint(digits):
    assert digits.train_x.shape == (1437, 64) and digits.test_x.shape == (360, 64)
    assert digits.train_x.min() >= 0 and digits.train_x.max() <= 1
    assert np.bincount(digits.test_y).min() >= 35                 # every digit held out
    assert not set(map(bytes, digits.test_x.astype(np.uint8))) <= set(map(bytes, digits.train_x.astype(np.uint8)))


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    rows, hidden, classes = 8, 5, 3
    params = [rng.uniform(1, 6, (rows, hidden)), rng.uniform(1, 6, (rows, classes)),
              rng.uniform(1, 6, (rows, hidden)), rng.uniform(1, 6, (rows, classes))]
    x, y = rng.uniform(0, 1, (6, 6)), rng.integers(0, classes, 6)
    args = (2, x, y, 2.0, 4, LEVEL_US, 15.0, False, None, rng)
    grads, loss = _gradients(params, *args)
    for slot in range(4):
        for index in [(0, 0), (3, 1), (7, 2)]:
            bumped = [p.copy() for p in params]
            bumped[slot][index] += 1e-6
            numeric = (_gradients(bumped, *args)[1] - loss) / 1e-6
            assert numeric == pytest.approx(grads[slot][index], rel=1e-3, abs=1e-7), (slot, index)


def test_training_reaches_the_digits_and_quantizes_to_the_level_table(trained, digits):
    floating, quantized = trained
    for network in (floating, quantized):
        assert (network.predict(digits.test_x) == digits.test_y).mean() > 0.93
    for levels in (*quantized.plus, *quantized.minus):
        assert levels.dtype == np.int64 and levels.min() >= 0 and levels.max() <= len(LEVELS) - 1
    assert any(not np.allclose(p, np.rint(p)) for p in floating.plus)      # the float model is not rounded
    assert quantized.history[-1] < quantized.history[0] / 10


def test_the_spiking_chip_model_does_what_the_mean_field_network_predicts(trained, digits):
    """The training's forward pass is the rate view of the chip's rules: run spike by spike on ideal cells
    (`ModelTransport(ideal=True)`), the quantized network classifies the test digits as it predicted."""
    _, quantized = trained
    s = quantized.settings
    mapping = compile_network(quantized.layers(), LEVELS, REFERENCE, s.threshold_code, s.v_read_code)
    chip = Chip(ModelTransport(REFERENCE, ideal=True))
    chip.load(mapping)
    picked = range(0, 360, 3)
    spiking = np.array([chip.classify(mapping, rate_code(digits.test_x[i], s.steps))[0].argmax() for i in picked])
    predicted = quantized.predict(digits.test_x[list(picked)])
    assert (spiking == predicted).mean() > 0.95
    assert quantized.gain == pytest.approx(neuron_gain(REFERENCE, s))


def test_device_spread_grows_with_the_level():
    spread = device_spread_us(REFERENCE, LEVELS, level_recipes(REFERENCE, LEVELS))
    assert spread.shape == (len(LEVELS),) and np.all(spread > 0)
    assert spread[-1] > 3 * spread[0]                      # relative spread: wider at high conductance


def test_training_refuses_what_no_core_holds(digits):
    with pytest.raises(ValueError, match="32 neurons"):
        train(REFERENCE, digits, LEVEL_US, TrainSettings(hidden=33, epochs=1))
    wide = Digits(np.zeros((4, 65)), np.arange(4), np.zeros((1, 65)), np.zeros(1, int))
    with pytest.raises(ValueError, match="64 inputs"):
        train(REFERENCE, wide, LEVEL_US, TrainSettings(epochs=1))
    with pytest.raises(ValueError, match="increasing"):
        train(REFERENCE, digits, LEVEL_US[::-1], TrainSettings(epochs=1))


def test_networks_save_and_load_exactly(trained, tmp_path):
    floating, quantized = trained
    save_networks(tmp_path / "net.npz", floating, quantized)
    loaded = load_networks(tmp_path / "net.npz")
    for before, after in zip(trained, loaded):
        assert all(np.array_equal(a, b) for a, b in zip(before.plus + before.minus, after.plus + after.minus))
        assert (after.settings, after.gain, after.inputs, after.history) == (
            before.settings, before.gain, before.inputs, before.history)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="not a network saved by rram-cim"):
        load_networks(tmp_path / "other.npz")
