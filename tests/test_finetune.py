"""Chip-in-the-loop fine-tuning: the hidden rates measured through the Chip API are what layer 1 receives
in the full network, retraining learns a distortion of them, and `finetune` leaves the chip holding the
network it returns."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.compiler import compile_network
from rram_cim.host.finetune import (FinetuneError, FinetuneSettings, accuracy, finetune, hidden_rates,
                                    mean_field_retrain, one_shot, retrain_last)
from rram_cim.host.recipes import level_recipes
from rram_cim.host.training import TrainSettings, load_digits, rate_code, train
from rram_cim.models.recipes import LEVELS

CODES = np.array(LEVELS)
LEVEL_US = CODES * REFERENCE.us_per_adc_lsb
#: A flat spread per level (uS), about the demo's: the tests need noise-aware retraining, not its exact size.
SPREAD = np.linspace(1.0, 6.0, len(CODES))


@pytest.fixture(scope="module")
def digits():
    return load_digits(seed=4)


@pytest.fixture(scope="module")
def network(digits):
    return train(REFERENCE, digits, LEVEL_US, TrainSettings(epochs=20, seed=4), SPREAD)[1]


def _mapping(network, layers):
    s = network.settings
    return compile_network(layers, CODES, REFERENCE, s.threshold_code, s.v_read_code)


def test_measured_hidden_rates_are_what_layer_one_receives_in_the_network(network, digits):
    """On ideal cells without neuron noise, layer 0 alone reports through its output events exactly the
    positive spikes its neurons fire inside the two-layer network in the input steps (a spike of the flush
    step would reach layer 1 after the run has ended)."""
    x = digits.train_x[:12]
    alone = Chip(ModelTransport(REFERENCE, 0, ideal=True), REFERENCE)
    first = _mapping(network, network.layers()[:1])
    alone.load(first)
    measured = hidden_rates(alone, first, x, network.settings.steps)
    transport = ModelTransport(REFERENCE, 0, ideal=True)
    whole = Chip(transport, REFERENCE)
    both = _mapping(network, network.layers())
    whole.load(both)
    inside = []
    for sample in x:
        whole.classify(both, rate_code(sample, network.settings.steps))
        inside.append((transport.last.spikes[:network.settings.steps, 0, :network.settings.hidden] > 0).sum(axis=0))
    assert measured.shape == (12, network.settings.hidden)
    assert np.array_equal(measured * network.settings.steps, np.array(inside))
    assert measured.max() > 0                               # the layer is alive, not trivially equal
    # and the mean-field model predicts them to within a spike or so per neuron
    assert np.abs(measured - network.rates(x)[0]).mean() < 1.5 / network.settings.steps


def test_retraining_learns_hidden_rates_that_differ_from_the_model(network, digits):
    """Layer 1 retrained on distorted hidden rates (a quarter of the neurons dead, the rest 30 % hotter)
    classifies those rates better than the offline layer 1 does; layer 0 is left as it was."""
    rates = network.rates(digits.train_x)[0]
    distorted = np.clip(rates * 1.3, 0, 1)
    distorted[:, ::4] = 0
    tuned = retrain_last(network, distorted, digits.train_y, SPREAD, FinetuneSettings(epochs=15, seed=1))

    def trained_accuracy(net):
        g_plus, g_minus = net.conductances(1)
        from rram_cim.host.training import _drive
        return (_drive(distorted, g_plus, g_minus).argmax(axis=1) == digits.train_y).mean()
    before, after = trained_accuracy(network), trained_accuracy(tuned)
    assert after > before + 0.03, (before, after)
    assert np.array_equal(tuned.plus[0], network.plus[0]) and np.array_equal(tuned.minus[0], network.minus[0])
    for levels in (tuned.plus[1], tuned.minus[1]):
        assert np.issubdtype(levels.dtype, np.integer) and levels.min() >= 0 and levels.max() < len(CODES)


def test_finetune_programs_layer_zero_then_the_retrained_layer_one(network, digits):
    chip = Chip(ModelTransport(REFERENCE, 7, neuron_noise=True), REFERENCE)
    recipes = level_recipes(REFERENCE, CODES)
    phases = []
    result = finetune(chip, network, digits.train_x[:100], digits.train_y[:100], CODES, recipes, SPREAD,
                      FinetuneSettings(epochs=20, passes=2, seed=2), lambda phase, done, total: phases.append(phase))
    assert result.measured.shape == (2, 100, network.settings.hidden)
    assert not np.array_equal(result.measured[0], result.measured[1])     # two draws of the neuron noise
    assert {p for p in phases if p.startswith("measuring")} == {"measuring layer 0, pass 1",
                                                                "measuring layer 0, pass 2"}
    assert [p.core for p in result.programs] == [0, 1]
    assert np.array_equal(result.mapping.targets[0], CODES[_mapping(network, network.layers()).levels[0]])
    assert np.array_equal(result.programs[1].targets, result.mapping.targets[1])
    assert not np.array_equal(result.network.plus[1], network.plus[1])     # layer 1 did change
    # the chip is left configured for the two-layer network: it classifies well above chance
    assert accuracy(chip, result.mapping, digits.test_x[:60], digits.test_y[:60], network.settings.steps) > 0.6


def test_one_shot_and_control_program_the_network_as_given(network, digits):
    chip = Chip(ModelTransport(REFERENCE, 3, ideal=True), REFERENCE)
    mapping, programs = one_shot(chip, network, CODES, level_recipes(REFERENCE, CODES))
    assert len(programs) == 2 and np.array_equal(programs[1].targets, mapping.targets[1])
    assert np.array_equal(programs[0].true_codes, mapping.targets[0])        # ideal cells: exactly on target
    control = mean_field_retrain(network, digits.train_x[:200], digits.train_y[:200], SPREAD,
                                 FinetuneSettings(epochs=2))
    assert np.array_equal(control.plus[0], network.plus[0])


def test_bad_requests_say_what_would_be_right(network, digits):
    floating = train(REFERENCE, digits, LEVEL_US, TrainSettings(epochs=1, seed=4))[0]
    with pytest.raises(FinetuneError, match="quantized"):
        retrain_last(floating, network.rates(digits.train_x[:5])[0], digits.train_y[:5], SPREAD)
    with pytest.raises(FinetuneError, match="TrainedNetwork"):
        retrain_last("net", np.zeros((5, 32)), digits.train_y[:5], SPREAD)
    with pytest.raises(FinetuneError, match=r"layer 1 takes \(samples, 32\)"):
        retrain_last(network, np.zeros((5, 31)), digits.train_y[:5], SPREAD)
    with pytest.raises(FinetuneError, match="0..1"):
        retrain_last(network, np.full((5, 32), 2.0), digits.train_y[:5], SPREAD)
    with pytest.raises(FinetuneError, match="4 labels for 5"):
        retrain_last(network, np.zeros((5, 32)), digits.train_y[:4], SPREAD)
    with pytest.raises(FinetuneError, match="classes 0..9"):
        retrain_last(network, np.zeros((2, 32)), np.array([0, 10]), SPREAD)
    with pytest.raises(FinetuneError, match="spread_us has 3 values for 8 levels"):
        retrain_last(network, np.zeros((2, 32)), np.array([0, 1]), SPREAD[:3])
    with pytest.raises(FinetuneError, match="epochs = 0"):
        FinetuneSettings(epochs=0)
    with pytest.raises(FinetuneError, match="learning_rate"):
        FinetuneSettings(learning_rate=float("nan"))
    chip = Chip(ModelTransport(REFERENCE, 0, ideal=True), REFERENCE)
    with pytest.raises(FinetuneError, match="one layer at a time"):
        hidden_rates(chip, _mapping(network, network.layers()), digits.train_x[:2], 16)
    with pytest.raises(FinetuneError, match=r"takes \(samples, 64\)"):
        hidden_rates(chip, _mapping(network, network.layers()[:1]), digits.train_x[:2, :10], 16)
    with pytest.raises(FinetuneError, match="one label each"):
        finetune(chip, network, digits.train_x[:3], digits.train_y[:2], CODES, None, SPREAD)
