"""The layer compiler: balanced differential columns make a voltage-mode neuron's input proportional to
its weights, with one gain for the whole layer; what does not fit is refused with the limit."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.host.compiler import CompileError, compile_layer
from rram_cim.models.neurons import column_voltages, differential_inputs
from rram_cim.models.recipes import LEVELS as PV_LEVELS

LEVELS = np.array(PV_LEVELS)                      # 8 evenly spaced levels, 10 to 115 uS


@pytest.mark.parametrize("seed", range(3))
def test_neuron_inputs_are_proportional_to_the_weights_with_one_gain(seed):
    rng = np.random.default_rng(seed)
    weights = rng.integers(-7, 8, size=(40, 32))     # 24 rows left to balance with
    mapping = compile_layer(weights, LEVELS, REFERENCE)
    g_us = mapping.targets * REFERENCE.us_per_adc_lsb
    columns = g_us[:, :64].sum(axis=0)
    assert np.allclose(columns, columns[0])                  # every column the same total
    for _ in range(5):
        driven = rng.random(40) < 0.3
        v_rows = np.zeros(REFERENCE.rows)
        v_rows[list(mapping.input_rows)] = np.where(driven, 0.09, 0.0)
        v_in = differential_inputs(column_voltages(g_us, v_rows))[:32]
        expected = driven @ weights
        gain = 0.09 * (LEVELS[1] - LEVELS[0]) * REFERENCE.us_per_adc_lsb / columns[0]
        assert np.allclose(v_in, gain * expected, atol=1e-12)
    assert set(mapping.balance_rows) == set(range(40, 64))
    assert mapping.levels.min() >= 0 and mapping.levels.max() <= 7


@pytest.mark.parametrize("weights,levels,message", [
    (np.zeros((64, 4), int), LEVELS, "no balance row"),
    (np.zeros((10, 33), int), LEVELS, "a core has 32"),
    (np.full((10, 2), 8), LEVELS, "allow ±7"),
    (np.full((60, 2), 7), LEVELS, "weights sum to 420 levels"),
    (np.zeros((10, 2)), LEVELS, "integer array"),
    (np.zeros((10, 2), int), np.array([20, 50, 90]), "evenly spaced"),
])
def test_what_does_not_fit_is_refused_naming_the_limit(weights, levels, message):
    with pytest.raises(CompileError, match=message):
        compile_layer(weights, levels, REFERENCE)


def test_a_core_that_does_not_exist_is_refused():
    with pytest.raises(CompileError, match="core 2 does not exist"):
        compile_layer(np.zeros((4, 2), int), LEVELS, REFERENCE, core=2)


# ---- whole networks ----------------------------------------------------------------------------------------
from rram_cim.host.compiler import Layer, compile_network  # noqa: E402
from rram_cim.protocol import (EVENT_TICK, ROUTE_ENTRY_BYTES, ROUTE_TO_HOST, ROUTE_TO_ROW, output_event,  # noqa: E402
                               route_offset, unpack_route)


def _network(rng, rows=(64, 64), sizes=((64, 32), (32, 10))):
    return [Layer(rng.integers(0, 8, (r, n)), rng.integers(0, 8, (r, n)), i) for r, (i, n) in zip(rows, sizes)]


def _route(mapping, core, neuron, negative):
    at = route_offset(REFERENCE.neurons, core, neuron, negative)
    entry = unpack_route(mapping.routing[at:at + ROUTE_ENTRY_BYTES])
    flags = (ROUTE_TO_HOST if entry.to_host else 0) | (ROUTE_TO_ROW if entry.to_row else 0)
    return flags, entry.core, entry.row


def test_network_places_layers_on_cores_and_routes_hidden_spikes_to_the_next_core():
    layers = _network(np.random.default_rng(0))
    mapping = compile_network(layers, LEVELS, REFERENCE, threshold_code=8, v_read_code=6)
    for core, layer in enumerate(layers):
        levels = mapping.levels[core]
        assert np.array_equal(levels[:, 0:2 * layer.neurons:2], layer.plus)
        assert np.array_equal(levels[:, 1:2 * layer.neurons:2], layer.minus)
        assert not levels[:, 2 * layer.neurons:].any()                 # unused columns at the lowest level
        assert np.array_equal(mapping.targets[core], LEVELS[levels])
    for neuron in range(32):
        assert _route(mapping, 0, neuron, 0) == (ROUTE_TO_ROW, 1, neuron)
        assert _route(mapping, 0, neuron, 1)[0] == 0                   # negative hidden spikes: nowhere
    for neuron in range(10):
        assert _route(mapping, 1, neuron, 0)[0] == _route(mapping, 1, neuron, 1)[0] == ROUTE_TO_HOST
    assert _route(mapping, 1, 10, 0)[0] == 0
    assert (mapping.codes.thresh_pos, mapping.codes.thresh_neg, mapping.codes.mode) == (8, 8, 2)
    raster = np.zeros((3, 64), bool)
    raster[0, [1, 5]] = raster[2, 63] = True
    assert mapping.host_steps(raster) == [[(0, 1), (0, 5)], [], [(0, 63)], []]     # one flush step
    events = [output_event(1, 2, False), output_event(1, 2, False), output_event(1, 7, True), EVENT_TICK,
              output_event(0, 3, False)]
    assert mapping.scores(events).tolist() == [0, 0, 2, 0, 0, 0, 0, -1, 0, 0]
    with pytest.raises(CompileError, match=r"\(steps, 64\)"):
        mapping.host_steps(np.zeros((3, 10), bool))


def test_integer_weights_compile_through_balancing():
    weights = np.random.default_rng(1).integers(-3, 4, (40, 8))
    layer = Layer.from_weights(weights, LEVELS, REFERENCE)
    assert layer.inputs == 40 and layer.neurons == 8
    assert np.array_equal((layer.plus - layer.minus)[:40], weights)
    mapping = compile_network([layer], LEVELS, REFERENCE, 8, 6)
    assert mapping.outputs == tuple((0, n) for n in range(8)) and mapping.flush_steps == 0


@pytest.mark.parametrize("change,message", [
    (lambda n: n + n[1:], r"the layers take 3 cores \(1 \+ 1 \+ 1; a core holds 32 neurons\): the chip has 2"),
    (lambda n: [Layer(np.zeros((65, 4), int), np.zeros((65, 4), int), 10)], "65 rows: a core has 64"),
    (lambda n: [Layer(np.zeros((64, 65), int), np.zeros((64, 65), int), 64)], r"take 3 cores \(3; "),
    (lambda n: [n[0], Layer(np.zeros((32, 33), int), np.zeros((32, 33), int), 32)], r"take 3 cores \(1 \+ 2; "),
    (lambda n: [Layer(np.full((64, 4), 8), np.zeros((64, 4), int), 64)], "levels 0..8; the table has 0..7"),
    (lambda n: [Layer(np.zeros((64, 4)), np.zeros((64, 4)), 64)], "integers"),
    (lambda n: [n[0], Layer(np.zeros((64, 4), int), np.zeros((64, 4), int), 31)], "takes 31 inputs but layer 0 has 32"),
    (lambda n: [Layer(np.zeros((64, 4), int), np.zeros((64, 5), int), 64)], "must be equal"),
    (lambda n: [Layer(np.zeros((64, 4), int), np.zeros((64, 4), int), 0)], "0 inputs"),
    (lambda n: [], "at least one layer"),
])
def test_networks_that_do_not_fit_are_refused_naming_the_limit(change, message):
    with pytest.raises(CompileError, match=message):
        compile_network(change(_network(np.random.default_rng(2))), LEVELS, REFERENCE, 8, 6)


@pytest.mark.parametrize("levels,threshold,v_read,message", [
    (np.arange(1, 18) * 10, 8, 6, "17 levels: the P&V level table holds 16"),
    (np.array([0, 30]), 8, 6, "ADC codes 1..255"),
    (np.array([30, 20]), 8, 6, "increasing"),
    (LEVELS, 0, 6, "threshold code 0"),
    (LEVELS, 1 << 16, 6, "threshold code 65536"),
    (LEVELS, 8, 7, "read code 7 is outside 1..6"),
])
def test_bad_levels_thresholds_and_read_codes_are_refused(levels, threshold, v_read, message):
    layers = [Layer(np.zeros((64, 4), int), np.zeros((64, 4), int), 64)]
    with pytest.raises(CompileError, match=message):
        compile_network(layers, levels, REFERENCE, threshold, v_read)


# ---- neuron settings per layer: threshold, leak, mode and reset ------------------------------------------
from rram_cim.config import REFERENCE_LITE  # noqa: E402
from rram_cim.models.neurons import NeuronMode, NeuronReset  # noqa: E402


def test_each_layers_reset_goes_to_its_core_like_its_leak_and_threshold():
    layers = _network(np.random.default_rng(3))
    mapping = compile_network(layers, LEVELS, REFERENCE, 8, 6, mode=NeuronMode.IF, reset=["subtract", "zero"])
    assert [c.reset for c in mapping.codes] == [NeuronReset.SUBTRACT, NeuronReset.ZERO]
    same = compile_network(layers, LEVELS, REFERENCE, 8, 6, mode=NeuronMode.IF, reset=NeuronReset.SUBTRACT)
    assert same.codes.reset == NeuronReset.SUBTRACT                 # one setting for every core
    assert compile_network(layers, LEVELS, REFERENCE, 8, 6).codes.reset == NeuronReset.ZERO


def test_layers_that_reset_differently_are_refused_on_a_config_with_one_page():
    layers = _network(np.random.default_rng(3))
    with pytest.raises(CompileError, match=r"layer 0: threshold 8, leak 0/256, IF, reset subtract; layer 1: "
                                           r"threshold 8, leak 0/256, IF, reset zero\), and config 'reference-lite'"):
        compile_network(layers, LEVELS, REFERENCE_LITE, 8, 6, mode=NeuronMode.IF, reset=["subtract", "zero"])


@pytest.mark.parametrize("reset, message", [
    ("to-zero", r"reset = 'to-zero': an IF or LIF neuron resets to 'zero' or by 'subtract'ing its threshold"),
    (["zero", 2], r"layer 1's reset = 2"),
    (["zero"], "reset: 1 values for 2 layers"),
])
def test_a_reset_that_is_not_zero_or_subtract_is_refused(reset, message):
    with pytest.raises(CompileError, match=message):
        compile_network(_network(np.random.default_rng(3)), LEVELS, REFERENCE, 8, 6, mode=NeuronMode.IF, reset=reset)


from rram_cim.protocol import route_destinations, route_offset, unpack_route  # noqa: E402


def test_a_layer_wider_than_a_core_is_split_over_cores_and_spikes_as_on_one_wide_core():
    # The same network on four 64x64 cores (its 40-neuron hidden layer split over cores 0 and 1, each
    # input sent to both, the output layer on core 2) and on two cores wide enough to hold each layer
    # whole: with ideal cells every neuron sees the same column voltages, so the output spikes are the same.
    from rram_cim.models.inference import InferenceModel
    from rram_cim.models.macro import AnalogMacro, NeuronCodes
    rng = np.random.default_rng(5)
    w0, w1 = rng.integers(-3, 4, (20, 40)), rng.integers(-3, 4, (40, 10))
    split_config = REFERENCE.replace(name="four-cores", cores=4)
    wide_config = REFERENCE.replace(name="wide-cores", columns=128, neurons=64)
    scores = {}
    for config in (split_config, wide_config):
        layers = [Layer.from_weights(w0, LEVELS, config), Layer.from_weights(w1, LEVELS, config)]
        mapping = compile_network(layers, LEVELS, config, threshold_code=6, v_read_code=6)
        macro = AnalogMacro(config, seed=1)
        for core, targets in enumerate(mapping.targets):
            macro.cores[core].g_us[:] = targets * config.us_per_adc_lsb
        model = InferenceModel(macro, mapping.routing, mapping.codes, mapping.v_read_code)
        rasters = rng.random((6, 12, 20)) < 0.4 if config is split_config else rasters
        scores[config.name] = [mapping.scores(model.run(mapping.host_steps(r)).events) for r in rasters]
        if config is split_config:
            assert mapping.layer_cores == ((0, 1), (2,)) and mapping.input_cores == (0, 1)
            assert mapping.outputs == tuple((2, n) for n in range(10))
            split_levels = np.hstack([mapping.levels[0][:, :64], mapping.levels[1][:, :16]])
            for core, neuron in ((0, 5), (1, 7)):      # global neurons 5 and 39: rows 5 and 39 of core 2
                entry = unpack_route(mapping.routing[route_offset(32, core, neuron, 0):][:4])
                assert route_destinations(entry) == [(2, 32 * core + neuron)]
        else:
            assert np.array_equal(mapping.levels[0][:, :80], split_levels)      # one column total for all
    assert np.array_equal(scores["four-cores"], scores["wide-cores"])
    assert sum(np.abs(s).sum() for s in scores["four-cores"]) > 20            # not vacuous


def test_a_split_layer_takes_each_spike_on_every_core_of_the_next():
    # Layer 1's 50 neurons on cores 1 and 2 of a three-core chip: core 0's spikes go to both.
    config = REFERENCE.replace(name="three-cores", cores=3)
    rng = np.random.default_rng(6)
    layers = [Layer.from_weights(rng.integers(-2, 3, (16, 8)), LEVELS, config),
              Layer.from_weights(rng.integers(-2, 3, (8, 50)), LEVELS, config)]
    mapping = compile_network(layers, LEVELS, config, [6, 9], 6, mode=[NeuronMode.ADC, NeuronMode.IF])
    assert mapping.layer_cores == ((0,), (1, 2))
    assert [mapping.codes[c].mode for c in range(3)] == [NeuronMode.ADC, NeuronMode.IF, NeuronMode.IF]
    entry = unpack_route(mapping.routing[route_offset(32, 0, 3, 0):][:4])
    assert route_destinations(entry) == [(1, 3), (2, 3)]
    assert mapping.outputs[31:33] == ((1, 31), (2, 0))
    assert mapping.host_steps(np.eye(16, dtype=bool)[:2])[1] == [(0, 1)]


def test_a_config_without_fan_out_splits_only_the_first_layer():
    lite = REFERENCE_LITE.replace(name="lite-three-cores", cores=3)
    rng = np.random.default_rng(8)
    wide, narrow = rng.integers(-2, 3, (16, 40)), rng.integers(-2, 3, (40, 8))
    mapping = compile_network([Layer.from_weights(wide, LEVELS, lite), Layer.from_weights(narrow, LEVELS, lite)],
                              LEVELS, lite, 6, 6)
    assert mapping.layer_cores == ((0, 1), (2,))
    entry = unpack_route(mapping.routing[route_offset(32, 1, 7, 0):][:4])
    assert route_destinations(entry) == [(2, 39)]
    split_hidden = [Layer.from_weights(rng.integers(-2, 3, (16, 8)), LEVELS, lite),
                    Layer.from_weights(rng.integers(-2, 3, (8, 40)), LEVELS, lite)]
    with pytest.raises(CompileError, match="layer 1 is split over 2 cores and config 'lite-three-cores' routes"):
        compile_network(split_hidden, LEVELS, lite, 6, 6)
