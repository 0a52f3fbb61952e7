"""NIR graphs onto the chip: a chain of Linear + IF (or LIF) layers, read from a NIR file, compiled and run
on the chip model, spikes as NIR's own equations give them for the quantized weights; what does not map
is refused with the reason."""

import nir
import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.compiler import CompileError
from rram_cim.host.nir_import import layers_from_nir
from rram_cim.models.neurons import NeuronMode
from rram_cim.sim.pv_reference import LEVELS

SIZES = (40, 16, 10)
STEPS = 16


def chain(weights, neurons):
    """Input -> (weights[k] -> neurons[k])... -> Output."""
    return nodes_in_a_row([node for pair in zip(weights, neurons) for node in pair])


def nodes_in_a_row(nodes):
    """Input -> nodes... -> Output."""
    named = {"input": nir.Input({"input": np.array([nodes[0].weight.shape[1]])}),
             **{f"node{k}": node for k, node in enumerate(nodes)},
             "output": nir.Output({"output": np.array([10])})}
    order = list(named)
    return nir.NIRGraph(named, list(zip(order, order[1:])), type_check=False)


def random_if_graph(rng, thresholds=(2.1, 1.3)):
    weights = [nir.Linear(rng.normal(0, 1, (out, inp))) for inp, out in zip(SIZES, SIZES[1:])]
    neurons = [nir.IF(r=np.ones(out), v_threshold=np.full(out, th)) for out, th in zip(SIZES[1:], thresholds)]
    return chain(weights, neurons)


def nir_counts(weights, thresholds, raster, leak=0.0):
    """NIR's IF/LIF equations step by step (reset to 0), with the chip's one-step delay between layers:
    every neuron's spike count."""
    v = [np.zeros(w.shape[1]) for w in weights]
    spikes_in = [np.zeros(w.shape[0]) for w in weights]
    counts = [np.zeros(w.shape[1], int) for w in weights]
    for t in range(len(raster) + len(weights) - 1):
        spikes_in[0] = raster[t] if t < len(raster) else np.zeros(weights[0].shape[0])
        fired = []
        for k, w in enumerate(weights):
            v[k] = v[k] * (1 - leak) + spikes_in[k] @ w
            z = v[k] >= thresholds[k]
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
    assert network.mode is NeuronMode.IF and network.threshold_error < 0.01 and network.threshold_code >= 1
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
    network = layers_from_nir(chain(weights, neurons), LEVELS, REFERENCE, dt=dt)
    mapping = network.compile(LEVELS, REFERENCE)
    assert (mapping.codes.mode, mapping.codes.leak) == (NeuronMode.LIF, 64)
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
     "threshold of 'node1' differs"),
    (lambda w: chain([w[0], w[1]], [nir.LI(tau=np.ones(16), r=np.ones(16), v_leak=np.zeros(16)), _if(10)]),
     "is a LI"),
    (lambda w: nodes_in_a_row([w[0], _if(16), w[1]]), "must alternate"),
    (lambda w: chain([nir.Linear(np.zeros((16, 40))), w[1]], [_if(16), _if(10)]), "only zero weights"),
    (lambda w: chain([w[0], w[1]], [_if(16), _if(10, threshold=-1.0)]), "must be positive"),
    (lambda w: nir.NIRGraph({"i": nir.Input({"input": np.array([40])}), "a": w[0], "b": _if(16), "c": _if(16),
                             "o": nir.Output({"output": np.array([16])})},
                            [("i", "a"), ("a", "b"), ("a", "c"), ("b", "o"), ("c", "o")]), "feeds 2 nodes"),
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
