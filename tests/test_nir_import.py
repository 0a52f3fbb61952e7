"""NIR graphs onto the chip: a chain of Linear + IF (or LIF) layers, read from a NIR file, compiled and run
on the chip model, spikes as NIR's own equations give them for the quantized weights; what does not map
is refused with the reason."""

import os
import shutil
import warnings

import nir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.compiler import CompileError
from rram_cim.host.nir_import import layers_from_nir
from rram_cim.models.neurons import NeuronMode, NeuronReset
from rram_cim.models.recipes import LEVELS

SIZES = (40, 16, 10)
STEPS = 16


def chain(weights, neurons):
    """Input -> (weights[k] -> neurons[k])... -> Output."""
    return nodes_in_a_row([node for pair in zip(weights, neurons) for node in pair])


def nodes_in_a_row(nodes):
    """Input -> nodes... -> Output."""
    first = next(node for node in nodes if hasattr(node, "weight"))
    named = {"input": nir.Input({"input": np.array([first.weight.shape[1]])}),
             **{f"node{k}": node for k, node in enumerate(nodes)},
             "output": nir.Output({"output": np.array([10])})}
    order = list(named)
    return nir.NIRGraph(named, list(zip(order, order[1:])), type_check=False)


def random_if_graph(rng, thresholds=(2.1, 1.3)):
    weights = [nir.Linear(rng.normal(0, 1, (out, inp))) for inp, out in zip(SIZES, SIZES[1:])]
    neurons = [nir.IF(r=np.ones(out), v_threshold=np.full(out, th)) for out, th in zip(SIZES[1:], thresholds)]
    return chain(weights, neurons)


def nir_counts(weights, thresholds, raster, leak=0.0):
    """NIR's IF/LIF equations step by step (fire at v > theta, reset to 0), with the chip's one-step delay
    between layers:
    every neuron's spike count."""
    v = [np.zeros(w.shape[1]) for w in weights]
    spikes_in = [np.zeros(w.shape[0]) for w in weights]
    counts = [np.zeros(w.shape[1], int) for w in weights]
    for t in range(len(raster) + len(weights) - 1):
        spikes_in[0] = raster[t] if t < len(raster) else np.zeros(weights[0].shape[0])
        fired = []
        for k, w in enumerate(weights):
            v[k] = v[k] * (1 - leak) + spikes_in[k] @ w
            z = v[k] > thresholds[k]
            v[k][z] = 0
            counts[k] += z
            fired.append(z.astype(float))
        spikes_in[1:] = fired[:-1]
    return counts[-1]


@pytest.mark.parametrize("seed", range(2))
def test_if_network_from_a_nir_file_spikes_as_nir_says(seed, tmp_path):
    rng = np.random.default_rng(seed)
    graph = random_if_graph(rng)
    nir.write(str(tmp_path / "net.nir"), graph)
    network = layers_from_nir(tmp_path / "net.nir", LEVELS, REFERENCE)
    assert all(c.mode == NeuronMode.IF for c in network.neurons) and network.threshold_error < 0.01
    assert min(network.threshold_codes) >= 1
    mapping = network.compile(LEVELS, REFERENCE)
    chip = Chip(ModelTransport(REFERENCE, ideal=True))
    chip.load(mapping)
    quantized = [(layer.plus - layer.minus)[:layer.inputs] * scale
                 for layer, scale in zip(network.layers, network.scales)]
    agree, total = 0, 0
    for _ in range(30):
        raster = rng.random((STEPS, SIZES[0])) < 0.3
        scores, _ = chip.classify(mapping, raster)
        expected = nir_counts(quantized, (2.1, 1.3), raster)
        agree += np.sum(scores == expected)
        total += expected.size
        assert scores.min() >= 0                                   # NIR neurons fire positive spikes only
    assert agree / total > 0.95, f"{agree}/{total}"


def test_lif_network_maps_to_the_chips_leak():
    rng = np.random.default_rng(3)
    dt, tau = 1e-4, 1e-4 / 0.25                       # snnTorch beta = 0.75: a quarter leaks per step
    weights = [nir.Linear(rng.normal(0, 1, (out, inp))) for inp, out in zip(SIZES, SIZES[1:])]
    neurons = [nir.LIF(tau=np.full(out, tau), r=np.full(out, tau / dt), v_leak=np.zeros(out),
                       v_threshold=np.full(out, 1.5)) for out in SIZES[1:]]
    network = layers_from_nir(chain(weights, neurons), LEVELS, REFERENCE, dt=dt, reset="zero")
    mapping = network.compile(LEVELS, REFERENCE)
    assert {(c.mode, c.leak) for c in network.neurons} == {(NeuronMode.LIF, 64)}
    chip = Chip(ModelTransport(REFERENCE, ideal=True))
    chip.load(mapping)
    quantized = [(layer.plus - layer.minus)[:layer.inputs] * scale
                 for layer, scale in zip(network.layers, network.scales)]
    agree = total = 0
    for _ in range(20):
        raster = rng.random((STEPS, SIZES[0])) < 0.4
        expected = nir_counts(quantized, (1.5, 1.5), raster, leak=0.25)
        agree += np.sum(chip.classify(mapping, raster)[0] == expected)
        total += expected.size
    assert agree / total > 0.95, f"{agree}/{total}"


def _if(out, threshold=1.0, **extra):
    return nir.IF(r=np.ones(out), v_threshold=np.full(out, threshold), **extra)


@pytest.mark.parametrize("build,message", [
    (lambda w: chain([nir.Affine(w[0].weight, np.ones(16)), w[1]], [_if(16), _if(10)]), "has a bias"),
    (lambda w: chain([w[0], w[1]], [_if(16, v_reset=np.ones(16)), _if(10)]), "non-zero v_reset"),
    (lambda w: chain([w[0], w[1]], [nir.IF(r=np.ones(16), v_threshold=np.arange(1, 17.0)), _if(10)]),
     "threshold of IF 'node1' \\(layer 0\\) differs"),
    (lambda w: chain([w[0], w[1]], [nir.LI(tau=np.ones(16), r=np.ones(16), v_leak=np.zeros(16)), _if(10)]),
     "is a LI"),
    (lambda w: nodes_in_a_row([w[0], _if(16), w[1]]), "Linear 'node2' \\(layer 1\\) ends the chain without neurons"),
    (lambda w: nodes_in_a_row([w[0], w[1], _if(16), _if(10)]),
     "Linear 'node0' \\(layer 0\\) is followed by Linear 'node1' \\(layer 0\\): the chain must alternate"),
    (lambda w: chain([nir.Linear(np.zeros((16, 40))), w[1]], [_if(16), _if(10)]), "only zero weights"),
    (lambda w: chain([w[0], w[1]], [_if(16), _if(10, threshold=-1.0)]), "must be positive"),
    (lambda w: nir.NIRGraph({"i": nir.Input({"input": np.array([40])}), "a": w[0], "b": _if(16), "c": _if(16),
                             "o": nir.Output({"output": np.array([16])})},
                            [("i", "a"), ("a", "b"), ("a", "c"), ("b", "o"), ("c", "o")]), "Linear 'a' feeds 2 nodes"),
    (lambda w: chain([nir.Linear(np.ones((16, 64)) * 0.1), w[1]], [_if(16), _if(10)]), "no balance row"),
])
def test_graphs_that_do_not_map_are_refused_with_the_reason(build, message):
    rng = np.random.default_rng(0)
    weights = [nir.Linear(rng.normal(0, 1, (out, inp))) for inp, out in zip(SIZES, SIZES[1:])]
    with pytest.raises(CompileError, match=message):
        layers_from_nir(build(weights), LEVELS, REFERENCE)


def test_an_unreadable_nir_file_is_refused(tmp_path):
    (tmp_path / "bad.nir").write_text("not hdf5")
    with pytest.raises(CompileError, match="cannot read NIR file"):
        layers_from_nir(tmp_path / "bad.nir", LEVELS, REFERENCE)


# ---- hardening: whatever the graph or file holds, a NirNetwork or one CompileError ------------------------
def _two_layers(first_weights=None, first_neurons=None):
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 1, (16, 40)), rng.normal(0, 1, (10, 16))]
    return chain([nir.Linear(weights[0] if first_weights is None else first_weights), nir.Linear(weights[1])],
                 [_if(16) if first_neurons is None else first_neurons, _if(10)])


def _with(array, at, value):
    array = np.array(array, dtype=np.result_type(array, value))
    array.flat[at] = value
    return array


_W = np.random.default_rng(0).normal(0, 1, (16, 40))


@pytest.mark.parametrize("graph, message", [
    (lambda: _two_layers(_with(_W, 3, np.nan)), "the weights of Linear 'node0' \\(layer 0\\) must be finite, not NaN or infinity"),
    (lambda: _two_layers(_with(_W, 3, -np.inf)), "the weights of Linear 'node0' \\(layer 0\\) must be finite"),
    (lambda: _two_layers(_W + 0.5j), "the weights of Linear 'node0' \\(layer 0\\) must be real numbers, not complex128"),
    (lambda: _two_layers(first_neurons=_if(16, threshold=np.nan)), "the threshold of IF 'node1' \\(layer 0\\) must be finite"),
    (lambda: _two_layers(first_neurons=_if(16, threshold=np.inf)), "the threshold of IF 'node1' \\(layer 0\\) must be finite"),
    (lambda: _two_layers(first_neurons=nir.LIF(tau=np.zeros(16), r=np.ones(16), v_leak=np.zeros(16),
                                               v_threshold=np.ones(16))),
     "'node1' \\(layer 0\\) has tau 0 s: a time constant must be positive"),
    (lambda: _two_layers(_W * 1e-300, _if(16, threshold=1e300)), "span a range the chip's registers cannot express"),
    (lambda: _two_layers(np.ones((40, 40))), "'node0' \\(layer 0\\) has 40 neurons: a core has 1..32"),
    (lambda: _two_layers(np.ones((16, 65))), "'node0' \\(layer 0\\) has 65 inputs: a core has 64 rows"),
])
def test_non_finite_complex_or_outsized_graphs_are_refused_with_the_reason(graph, message):
    with pytest.raises(CompileError, match=message):
        layers_from_nir(graph(), LEVELS, REFERENCE)


def test_a_nir_file_with_an_unknown_node_type_names_it(tmp_path):
    import h5py
    nir.write(tmp_path / "net.nir", _two_layers())
    with h5py.File(tmp_path / "net.nir", "r+") as handle:
        del handle["node/nodes/node1/type"]
        handle["node/nodes/node1/type"] = b"Mystery"
    with pytest.raises(CompileError, match="node 'node1' has type 'Mystery', which NIR does not define"):
        layers_from_nir(tmp_path / "net.nir", LEVELS, REFERENCE)


def test_a_nir_file_with_an_array_no_core_uses_is_refused_before_reading_it(tmp_path):
    import h5py
    nir.write(tmp_path / "net.nir", _two_layers())
    with h5py.File(tmp_path / "net.nir", "r+") as handle:
        # 10^5 x 10^5 floats announced, compressed to nothing: refused from its shape, never read.
        handle.create_dataset("node/nodes/node0/extra", shape=(10 ** 5, 10 ** 5), dtype="f8", chunks=(100, 100),
                              compression="gzip")
    with pytest.raises(CompileError, match=r"node/nodes/node0/extra has shape \(100000, 100000\)"):
        layers_from_nir(tmp_path / "net.nir", LEVELS, REFERENCE)


@pytest.mark.parametrize("content", [b"", b"not hdf5", None])
def test_empty_missing_or_foreign_nir_files_are_one_line_refusals(tmp_path, content):
    path = tmp_path / "net.nir"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CompileError, match="cannot read NIR file") as refused:
        layers_from_nir(path, LEVELS, REFERENCE)
    assert "\n" not in str(refused.value)


_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-3, 3), st.complex_numbers(max_magnitude=3),
                    st.sampled_from([0.0, 1e-300, 1e300, -1.0]))


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_two_layer_graph_maps_or_is_refused_with_one_compile_error(data):
    inputs = data.draw(st.integers(1, 70))
    hidden = data.draw(st.integers(1, 36))
    weights = data.draw(hnp.arrays(np.float64, (hidden, inputs), elements=st.floats(-2, 2)))
    if data.draw(st.booleans()):
        weights = _with(weights, data.draw(st.integers(0, weights.size - 1)), data.draw(_values))
    threshold = data.draw(st.one_of(st.floats(0.01, 10), _values))
    if data.draw(st.booleans()):
        neurons = _if(hidden, threshold=threshold)
    else:
        tau = data.draw(st.one_of(st.floats(1e-4, 1e-2), _values))
        neurons = nir.LIF(tau=np.full(hidden, tau), r=np.ones(hidden), v_leak=np.zeros(hidden),
                          v_threshold=np.full(hidden, threshold))
    graph = chain([nir.Linear(weights), nir.Linear(np.ones((10, hidden)))], [neurons, _if(10)])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            network = layers_from_nir(graph, LEVELS, REFERENCE)
    except CompileError as error:
        assert str(error) and "\n" not in str(error)
        return
    assert all(1 <= code <= 0xFFFF for code in network.threshold_codes)
    assert all(np.isfinite(scale) and scale > 0 for scale in network.scales)
    assert network.layers[0].neurons == hidden


# ---- real exporters: snnTorch, Norse and Sinabs files (tests/fixtures/nir/make_fixtures.py) -------------
from pathlib import Path  # noqa: E402

from rram_cim.config import REFERENCE_LITE  # noqa: E402
from rram_cim.host.nir_import import NirWarning  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "nir"
#: Each exporter's time step as the importer takes it: snnTorch's 1e-4 s; Norse 1.1 writes tau = dt * tau
#: (it divides its dt by 1/tau), so its dt squared; Sinabs's taus are in steps.
EXPORT_DT = {"snntorch": 1e-4, "norse": 1e-6, "sinabs": 1.0}
#: The reset each fixture's network had, where its file does not say it (make_fixtures.py's notes).
RESET = {"sinabs_if": "zero", "sinabs_lif": "zero", "sinabs_subtract": "subtract", "sinabs_subtract_single": "subtract",
         "snntorch_subtract": "subtract", "snntorch_if_subtract": "subtract"}


def fixture(name):
    data = np.load(FIXTURES / f"{name}.npz")
    raster = np.unpackbits(data["raster"], axis=-1)[..., :int(data["inputs"])].astype(bool)
    return FIXTURES / f"{name}.nir", raster, data["counts"]


def agreement(name, config=REFERENCE, **options):
    """The share of (digit, output) spike counts on which the chip model (ideal cells) and the exporting
    framework's own forward pass agree."""
    path, raster, counts = fixture(name)
    framework = name.split("_")[0]
    options = {"dt": EXPORT_DT[framework], "fires_at_threshold": framework == "sinabs", "reset": RESET.get(name),
               **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NirWarning)
        network = layers_from_nir(path, LEVELS, config, **options)
    mapping = network.compile(LEVELS, config)
    chip = Chip(ModelTransport(config, ideal=True), config)
    chip.load(mapping)
    scores = np.array([chip.classify(mapping, digit)[0] for digit in raster])
    return float(np.mean(scores == counts)), network


@pytest.mark.parametrize("name, least", [
    ("snntorch_if", 1.0), ("snntorch_lif", 1.0), ("snntorch_lif_leaks", 0.97), ("snntorch_if_subtract", 1.0),
    ("norse_if", 1.0), ("norse_lif", 0.97), ("norse_lif_leaks", 0.97), ("sinabs_if", 1.0),
    ("sinabs_subtract_single", 1.0),
])
def test_exported_networks_spike_as_their_framework_did(name, least):
    share, _ = agreement(name)
    assert share >= least, f"{name}: {share:.3f} of spike counts agree with the framework"


@pytest.mark.parametrize("name", ["sinabs_lif", "snntorch_lif_float"])
def test_what_the_chip_cannot_match_yet_is_measured(name):
    """Sinabs's exp(-dt/tau) leak and unrounded weights: the agreement is reported in docs/host.md, not
    pinned; the network imports and runs."""
    share, network = agreement(name)
    assert 0 < share < 1 and network.layers


def _file_weights(path):
    graph = nir.read(str(path), type_check=False)
    return [np.asarray(node.weight, float).reshape(np.shape(node.weight)[-2:]) for node in graph.nodes.values()
            if hasattr(node, "weight")]


def _subtracting(weights, digit, beta, rule):
    """Output spike counts of a chain of subtracting neurons (threshold 1) on one digit, zero delay:
    'snntorch': v = beta v + W x - theta z[t-1], fires at v > theta (the Leaky's subtraction follows the leak);
    'sinabs': v += W x, floor(v / theta) spikes at v >= theta, each subtracting theta (MultiSpike);
    'chip': v = beta v + W x, one spike at v > theta (>= for Sinabs), subtracting theta before the next leak."""
    v = [np.zeros(w.shape[0]) for w in weights]
    fired = [np.zeros(w.shape[0]) for w in weights]
    counts = 0
    for x in digit.astype(float):
        for k, w in enumerate(weights):
            if rule == "snntorch":
                v[k] = beta * v[k] + w @ x - fired[k]
                z = (v[k] > 1).astype(float)
            elif rule == "sinabs":
                v[k] = v[k] + w @ x
                z = np.where(v[k] >= 1, np.floor(v[k]), 0.0)
                v[k] -= z
            else:
                v[k] = beta * v[k] + w @ x
                z = (v[k] >= 1 if beta == 1 else v[k] > 1).astype(float)
                v[k] -= z
            fired[k], x = z, z
        counts = counts + x
    return counts


@pytest.mark.parametrize("name, beta, least", [("snntorch_subtract", 0.875, 0.70), ("sinabs_subtract", 1.0, 0.52)])
def test_subtracting_defaults_rise_and_differ_only_by_the_frameworks_neuron_model(name, beta, least):
    """Imported with reset='subtract', snnTorch's Leaky and Sinabs's IAF defaults agree on 0.708 and 0.525 of
    spike counts (0.583 and 0.450 as reset to zero); the rest is their neuron, not the mapping: the chip
    spikes exactly as the chip's neuron equations do on the file's weights, and those equations with
    snnTorch's order (subtract after the leak) or Sinabs's MultiSpike give the framework's counts exactly."""
    path, raster, counts = fixture(name)
    share, network = agreement(name)
    assert share >= least and share > agreement(name, reset="zero")[0], f"{name}: {share:.3f}"
    assert all(c.reset == NeuronReset.SUBTRACT for c in network.neurons)
    framework, weights = name.split("_")[0], _file_weights(path)
    chip_model = np.array([_subtracting(weights, digit, beta, "chip") for digit in raster])
    assert np.array_equal(np.array([_subtracting(weights, d, beta, framework) for d in raster]), counts)
    assert np.mean(chip_model == counts) == share
    mapping = network.compile(LEVELS, REFERENCE)
    chip = Chip(ModelTransport(REFERENCE, ideal=True), REFERENCE)
    chip.load(mapping)
    assert np.array_equal(np.array([chip.classify(mapping, digit)[0] for digit in raster]), chip_model)


def test_reset_is_chosen_per_layer_and_carried_to_each_core():
    _, network = agreement("snntorch_if_subtract", reset=["subtract", "zero"])
    assert [c.reset for c in network.neurons] == [NeuronReset.SUBTRACT, NeuronReset.ZERO]
    assert [c.reset for c in network.compile(LEVELS, REFERENCE).codes] == [NeuronReset.SUBTRACT, NeuronReset.ZERO]
    with pytest.raises(CompileError, match=r"layers reset differently \(subtract, zero\), and config 'reference-lite'"):
        layers_from_nir(FIXTURES / "norse_if.nir", LEVELS, REFERENCE_LITE, reset=["subtract", "zero"])


@pytest.mark.parametrize("reset, message", [
    ("subtractive", r"reset = 'subtractive': an IF or LIF neuron resets to 'zero' or by 'subtract'ing its threshold "
                    r"\(protocol.NeuronReset.ZERO / SUBTRACT\), or None: as the file says"),
    (1, r"reset = 1: an IF or LIF neuron resets to 'zero' or by 'subtract'ing"),
    (["zero"], "reset: 1 values for 2 layers"),
    (["zero", "none"], r"layer 1's reset = 'none'"),
])
def test_a_reset_that_is_not_zero_subtract_or_none_is_refused(reset, message):
    with pytest.raises(CompileError, match=message):
        layers_from_nir(FIXTURES / "norse_if.nir", LEVELS, REFERENCE, reset=reset)


def test_snntorch_if_exports_tau_and_r_of_infinity_and_import_as_if():
    _, network = agreement("snntorch_if")
    assert [c.mode for c in network.neurons] == [NeuronMode.IF, NeuronMode.IF]
    assert [c.leak for c in network.neurons] == [0, 0]


def test_the_firing_rule_matters_and_nir_fires_above_the_threshold():
    """Weights on a 1/8 grid put membranes exactly on theta; snnTorch does not fire there, Sinabs does."""
    assert agreement("snntorch_if", fires_at_threshold=True)[0] < 0.95
    assert agreement("sinabs_if", fires_at_threshold=False)[0] < 0.95


def test_each_layer_keeps_its_own_leak_and_threshold_on_its_core():
    _, network = agreement("snntorch_lif_leaks")
    assert [c.leak for c in network.neurons] == [32, 64]                   # beta 0.875, then 0.75
    mapping = network.compile(LEVELS, REFERENCE)
    assert [c.leak for c in mapping.codes] == [32, 64]
    with pytest.raises(CompileError, match="config 'reference-lite' has one page of neuron settings for every "
                                           r"core \(per_core_neurons off\)"):
        layers_from_nir(FIXTURES / "snntorch_lif_leaks.nir", LEVELS, REFERENCE_LITE, dt=1e-4)


def test_a_single_page_of_neuron_settings_shares_one_threshold_by_rescaling_weights():
    share, network = agreement("norse_if", config=REFERENCE_LITE)
    assert len(set(network.threshold_codes)) == 1 and share > 0.9


def test_batched_exports_import_with_their_batch_dimension_dropped():
    graph = nir.read(str(FIXTURES / "norse_if.nir"), type_check=False)
    assert list(graph.nodes["input"].input_type["input"]) == [1, 48]        # Norse exports a (1, 48) sample
    with pytest.raises(ValueError, match="type mismatch"):
        nir.read(str(FIXTURES / "norse_if.nir"))                            # nir's own check refuses it
    graph.nodes["1"] = nir.IF(r=np.ones((1, 16)), v_threshold=np.ones((1, 16)), v_reset=np.zeros((1, 16)))
    network = layers_from_nir(graph, LEVELS, REFERENCE)                      # Sinabs IAF's (1, n) parameters
    assert network.layers[0].neurons == 16


def test_an_input_shape_that_does_not_match_the_first_layer_is_refused():
    graph = nir.read(str(FIXTURES / "norse_if.nir"), type_check=False)
    graph.nodes["input"] = nir.Input({"input": np.array([1, 50])})
    with pytest.raises(CompileError, match=r"Input 'input' has shape \(50,\), 50 values, but Affine '0' "
                                           r"\(layer 0\) takes 48 inputs"):
        layers_from_nir(graph, LEVELS, REFERENCE)


def test_dt_comes_from_the_argument_then_the_file_then_snntorchs_default_with_a_warning():
    graph = nir.read(str(FIXTURES / "snntorch_lif.nir"))
    with pytest.warns(NirWarning, match="records no time step: assuming snnTorch's dt = 0.0001 s"):
        assert layers_from_nir(graph, LEVELS, REFERENCE).dt_source == "default"
    graph.nodes["1"].metadata["dt"] = 2e-4
    graph.nodes["3"].metadata["dt"] = 2e-4
    network = layers_from_nir(graph, LEVELS, REFERENCE)
    assert (network.dt, network.dt_source, network.neurons[0].leak) == (2e-4, "file", 64)
    assert layers_from_nir(graph, LEVELS, REFERENCE, dt=1e-4).neurons[0].leak == 32


def test_a_leak_the_register_cannot_hold_is_refused_naming_dt():
    # Norse 1.1 at snnTorch's dt: tau = 8e-6 s is a leak of 12.5 per step.
    with pytest.raises(CompileError, match=r"LIF '1' \(layer 0\): tau = 8e-06 s at dt = 0.0001 s \(argument\) is a "
                                           r"leak of 12.5 per step, which rounds to 3200/256"):
        layers_from_nir(FIXTURES / "norse_lif.nir", LEVELS, REFERENCE, dt=1e-4)
    with pytest.raises(CompileError, match=r"at dt = 1e-09 s \(argument\) is a leak of 0.000125 per step, which "
                                           "rounds to 0/256"):
        layers_from_nir(FIXTURES / "norse_lif.nir", LEVELS, REFERENCE, dt=1e-9)


def test_a_file_that_lost_its_reset_is_warned_about_once_naming_the_argument():
    """Sinabs (nir 1.0.4) writes no v_reset, which nir 1.0.4's equations read as subtracting; snnTorch writes
    v_reset = 0 whatever its reset_mechanism. Norse records its v_reset; an explicit reset is not warned about."""
    with pytest.warns(NirWarning, match=r"neurons \['1', '3'\] record no v_reset, as Sinabs writes them.*imported as "
                                        r"subtracting.*Pass reset='zero' or reset='subtract'") as caught:
        network = layers_from_nir(FIXTURES / "sinabs_subtract.nir", LEVELS, REFERENCE, dt=1.0)
    assert sum("reset" in str(w.message) for w in caught) == 1
    assert [c.reset for c in network.neurons] == [NeuronReset.SUBTRACT] * 2
    with pytest.warns(NirWarning, match=r"LIF nodes \['1', '3'\] look like snnTorch's export.*imported as reset to "
                                        r"zero.*Pass reset='zero' or reset='subtract'"):
        network = layers_from_nir(FIXTURES / "snntorch_subtract.nir", LEVELS, REFERENCE, dt=1e-4)
    assert [c.reset for c in network.neurons] == [NeuronReset.ZERO] * 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", NirWarning)
        warnings.filterwarnings("ignore", "layer . .*comparator offsets", NirWarning)
        layers_from_nir(FIXTURES / "norse_if.nir", LEVELS, REFERENCE)
        layers_from_nir(FIXTURES / "snntorch_subtract.nir", LEVELS, REFERENCE, dt=1e-4, reset="subtract")
        layers_from_nir(FIXTURES / "sinabs_subtract.nir", LEVELS, REFERENCE, dt=1.0, reset=["subtract", "subtract"])


def test_a_threshold_of_a_few_comparator_offsets_is_warned_about():
    with pytest.warns(NirWarning, match=r"layer 0 \('1'\): its threshold is 0.5 mV on the membrane, 0.2 "
                                        r"comparator offsets \(sigma 2 mV\)"):
        layers_from_nir(FIXTURES / "snntorch_if.nir", LEVELS, REFERENCE)


def test_flatten_nodes_are_dropped_and_named_when_they_break_the_chain():
    rng = np.random.default_rng(0)
    w = [nir.Linear(rng.normal(0, 1, (16, 40))), nir.Linear(rng.normal(0, 1, (10, 16)))]
    flat = nir.Flatten(input_type={"input": np.array([40])}, start_dim=0, end_dim=-1)
    network = layers_from_nir(nodes_in_a_row([flat, w[0], _if(16), w[1], _if(10)]), LEVELS, REFERENCE)
    assert len(network.layers) == 2
    with pytest.raises(CompileError, match=r"Linear 'node1' \(layer 0\) is followed by Linear 'node3'"):
        layers_from_nir(nodes_in_a_row([flat, w[0], flat, w[1], _if(16), _if(10)]), LEVELS, REFERENCE)


# ---- the nir floor: pyproject allows nir 1.0.4, the version Sinabs pins ------------------------------------
NIR_FLOOR = "1.0.4"
#: nir 1.0.4 installed once (no dependencies: numpy and h5py are the project's) and shared between runs
#: and clones; it shadows the project's nir through PYTHONPATH in a subprocess.
NIR_FLOOR_DIR = Path.home() / ".cache" / "rram_cim" / f"nir-{NIR_FLOOR}"

FLOOR_SCRIPT = """
import sys, warnings
import numpy as np
import nir
from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.compiler import CompileError
from rram_cim.host.nir_import import layers_from_nir
from rram_cim.models.recipes import LEVELS
assert nir.__version__ == sys.argv[1], nir.__version__
warnings.simplefilter("ignore")
for argument in sys.argv[3:]:
    name, _, reset = argument.partition(":")
    path = sys.argv[2] + "/" + name
    try:
        network = layers_from_nir(path + ".nir", LEVELS, REFERENCE, dt=1.0, fires_at_threshold=True,
                                  reset=reset or None)
    except CompileError as error:
        print(name, "refused", error)
        continue
    data = np.load(path + ".npz")
    raster = np.unpackbits(data["raster"], axis=-1)[..., :int(data["inputs"])].astype(bool)
    mapping = network.compile(LEVELS, REFERENCE)
    chip = Chip(ModelTransport(REFERENCE, ideal=True))
    chip.load(mapping)
    scores = np.array([chip.classify(mapping, digit)[0] for digit in raster])
    print(name, "agrees", float(np.mean(scores == data["counts"])))
"""


def _nir_floor() -> Path:
    import subprocess
    import sys
    if not (NIR_FLOOR_DIR / "nir" / "__init__.py").is_file():
        NIR_FLOOR_DIR.parent.mkdir(parents=True, exist_ok=True)
        scratch = NIR_FLOOR_DIR.with_name(NIR_FLOOR_DIR.name + f".{os.getpid()}")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(scratch),
                        f"nir=={NIR_FLOOR}"], check=True, timeout=300)
        try:
            scratch.rename(NIR_FLOOR_DIR)   # atomic: parallel workers either win or find it there
        except OSError:
            shutil.rmtree(scratch, ignore_errors=True)
    return NIR_FLOOR_DIR


def test_the_nir_floor_reads_its_own_exports_and_refuses_newer_files_in_one_line():
    """Sinabs's exports (written by nir 1.0.4, IF without v_reset) import and spike as Sinabs did under nir
    1.0.4, subtracting as nir 1.0.4's IF does unless reset='zero' says otherwise; a file written by a newer
    nir (LIF with v_reset) is one CompileError naming the field."""
    import subprocess
    import sys
    site = _nir_floor()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", FLOOR_SCRIPT, NIR_FLOOR, str(FIXTURES), "sinabs_if:zero",
                          "sinabs_subtract_single", "snntorch_lif"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    assert lines["sinabs_if"] == lines["sinabs_subtract_single"] == "agrees 1.0", run.stdout
    assert "refused cannot read NIR file" in lines["snntorch_lif"] and "'v_reset'" in lines["snntorch_lif"]
