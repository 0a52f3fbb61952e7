"""SPIRIT's SLC-group mapping: a weight is a count of ON cells in its group, groups take `group` rows per
input and hidden neurons `group` replicas, the chip computes what the group-view network computes, and
what does not fit is refused with the limit."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.recipes import HOLDING, level_recipes
from rram_cim.host.slc_mapping import (SLC_CODES, SPIRIT_GROUP, SlcFitError, binary_recipes, check_fit,
                                       compile_slc, counts_from_weights, expand_raster, footprint, group_config,
                                       group_levels, pool_digits, program_pulses, train_slc, used_cells)
from rram_cim.host.training import TrainedNetwork, TrainSettings, load_digits, rate_code
from rram_cim.models.crossbar import slc_group_conductance
from rram_cim.protocol import ROUTE_ENTRY_BYTES, route_offset, unpack_route

G = SPIRIT_GROUP
OFF_US, ON_US = (code * REFERENCE.us_per_adc_lsb for code in SLC_CODES)


@pytest.fixture(scope="module")
def digits():
    return pool_digits(load_digits(seed=5), 16)


@pytest.fixture(scope="module")
def network(digits):
    """16 pooled pixels -> 8 hidden -> 10 on groups of four, trained on nominal OFF/ON cells."""
    return train_slc(REFERENCE, digits, G, (OFF_US, ON_US), (1.0, 6.0), TrainSettings(hidden=8, epochs=40, seed=5))[1]


def test_signed_weight_turns_on_cells_of_one_sign_only():
    weights = np.array([[4, -4, 0], [2, -1, 3]])
    plus, minus = counts_from_weights(weights, G)
    assert plus.tolist() == [[4, 0, 0], [2, 0, 3]] and minus.tolist() == [[0, 4, 0], [0, 1, 0]]
    g = slc_group_conductance(plus, ON_US, OFF_US, G) - slc_group_conductance(minus, ON_US, OFF_US, G)
    assert np.allclose(g, weights * (ON_US - OFF_US))          # the pair's difference is the weight
    with pytest.raises(SlcFitError, match="weights reach 5; a group of 4 cells holds -4..4"):
        counts_from_weights(np.array([[5]]), G)
    with pytest.raises(SlcFitError, match="integer"):
        counts_from_weights(np.array([[0.5]]), G)


def test_footprint_costs_group_rows_per_input_and_replicas_per_hidden_neuron():
    assert footprint(16, 8, 4, feeds_next=True) == (64, 64, 32)
    assert footprint(8, 10, 4, feeds_next=False) == (32, 20, 10)
    check_fit(16, 8, 4, True, REFERENCE)
    with pytest.raises(SlcFitError, match="64 inputs x a group of 4 cells = 256 rows; a core has 64: at most 16 inputs"):
        check_fit(64, 8, 4, True, REFERENCE)
    with pytest.raises(SlcFitError, match=r"16 neurons x 4 replicas .* = 64 neurons; a core has 32: at most 8"):
        check_fit(16, 16, 4, True, REFERENCE)
    with pytest.raises(SlcFitError, match="group = 0"):
        check_fit(16, 8, 0, True, REFERENCE)
    with pytest.raises(SlcFitError, match="taller than a core"):
        group_config(REFERENCE, 65)


def test_group_levels_are_even_steps_of_one_cell_turned_on():
    g, sd = group_levels(10.0, 110.0, 1.0, 5.0, 4)
    assert g.tolist() == [40.0, 140.0, 240.0, 340.0, 440.0]
    assert sd[0] == pytest.approx(2.0) and sd[4] == pytest.approx(10.0) and sd[2] == pytest.approx(np.sqrt(52))
    with pytest.raises(SlcFitError, match="ON above OFF"):
        group_levels(110.0, 10.0, 1.0, 1.0, 4)


def test_compiled_cells_hold_each_groups_count_on_every_replica(network):
    mapping = compile_slc(network, G, REFERENCE)
    on = mapping.levels[0] == 1
    hidden = network.plus[0].shape[1]
    for j in range(hidden):
        for q in range(G):
            slot = j * G + q
            for side, counts in ((0, network.plus[0]), (1, network.minus[0])):
                cells = on[:, 2 * slot + side].reshape(-1, G).sum(axis=1)      # ON cells per group-row
                assert np.array_equal(cells, counts[:, j]), (j, q, side)
            # replica q of hidden neuron j feeds row j * G + q of the next core
            at = route_offset(REFERENCE.neurons, 0, slot, 0)
            entry = unpack_route(mapping.routing[at:at + ROUTE_ENTRY_BYTES])
            assert entry.to_row and int(entry.core) == 1 and int(entry.row) == j * G + q
    assert set(np.unique(np.concatenate([t.ravel() for t in mapping.targets]))) <= set(SLC_CODES)
    assert mapping.input_rows == tuple(range(16 * G))
    assert expand_raster(np.array([[1, 0], [0, 1]], bool), 3).tolist() == [[1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]]


def test_chip_with_ideal_slc_cells_classifies_as_the_group_view_network(network, digits):
    """On ideal cells (noise off) the spiking chip and the mean-field group-view network agree on most
    digits: the groups, replicas and routing compute what was trained."""
    mapping = compile_slc(network, G, REFERENCE)
    chip = Chip(ModelTransport(REFERENCE, 0, ideal=True), REFERENCE)
    chip.load(mapping)
    x, y = digits.test_x[:80], digits.test_y[:80]
    chip_says = np.array([chip.classify(mapping, expand_raster(rate_code(s, 16), G))[0].argmax() for s in x])
    model_says = network.predict(x)
    assert (chip_says == model_says).mean() > 0.8
    assert (chip_says == y).mean() > 0.5                     # well above chance (0.1) on a 16-8-10 network


def test_pulses_are_counted_on_used_cells_only_and_binary_windows_take_fewer(network):
    mapping = compile_slc(network, G, REFERENCE)
    used = used_cells(mapping)
    assert [u.sum() for u in used] == [64 * 2 * 8 * G, 64 * 2 * 10]
    verified = level_recipes(REFERENCE, SLC_CODES, **HOLDING)
    binary = binary_recipes(verified)
    assert binary[SLC_CODES[1]].window == (SLC_CODES[1] - SLC_CODES[0] - 1) // 2
    assert binary[SLC_CODES[0]].window == SLC_CODES[0] - 1                # never below code 1
    tight = program_pulses(mapping, verified, seed=1)
    loose = program_pulses(mapping, binary, seed=1)
    for pulses, mask in zip(tight, used):
        assert pulses[~mask].sum() == 0 and pulses[mask].min() >= 0 and pulses[mask].mean() > 0.5
    assert sum(p.sum() for p in loose) < sum(p.sum() for p in tight)
    with pytest.raises(SlcFitError, match="two levels, not 3"):
        binary_recipes(level_recipes(REFERENCE, (20, 50, 80)))


def test_bad_inputs_are_refused_with_what_would_fit(network, digits):
    with pytest.raises(SlcFitError, match="pooling takes 8x8 digits to one of"):
        pool_digits(load_digits(seed=5), 20)
    with pytest.raises(SlcFitError, match="at most 16 inputs"):
        train_slc(REFERENCE, load_digits(seed=5), G, (OFF_US, ON_US), (1.0, 6.0), TrainSettings(hidden=8, epochs=1))
    with pytest.raises(SlcFitError, match="quantize"):
        floating = TrainedNetwork([p + 0.5 for p in network.plus], list(network.minus), network.level_us,
                                  network.settings, network.gain, network.inputs)
        compile_slc(floating, G, REFERENCE)
    with pytest.raises(SlcFitError, match="raster is"):
        expand_raster(np.zeros(4, bool), G)
