"""The digits CNN's layers in co-simulation: each layer's MVMs on the RTL (Verilator) equal the golden
model's bit for bit, on a subset of a few digits' patches (docs/cnn.md, "Co-simulation").

A small network (4 / 8 channels, 12 float epochs) is planned by `host.cnn_chip.plan` on the top rows of
the reference chip's cores (`host.cnn_cosim`): conv 1, conv 2 and the dense layer whole, each on rows
0..39 of core 0 in turn, programmed over the last. Every layer's inputs are the real im2col patches of the
previous layer's real outputs, which a third chip (the model, neuron noise off, the same cells) computes
for every position of the digits; it also pins the model to the mapping's own noise-free outputs
(`MappedLayer.expected` on its cells). The compared MVMs run, as the CNN's accuracy is measured, with the
neurons' noise on, after `Chip.calibrate` (6 trials per round here, not the CNN's 64: 48 MVMs instead of
512, ~4 s instead of ~40 s in co-simulation)."""

import time

import numpy as np
import pytest

from rram_cim.config import REFERENCE
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.cnn import CNNSettings, train
from rram_cim.host.cnn_cosim import plan_on_rows
from rram_cim.host.training import load_digits
from rram_cim.models.recipes import LEVELS
from rram_cim.sim.cosim_link import CosimTransport

SETTINGS = CNNSettings(channels=(4, 8), epochs=12, aware_epochs=0, seed=3)
SEED = 5                          # the chips' cells and neurons
DIGITS = 5                        # the first test digits
#: Positions compared per digit (of 64, 16 and 1), drawn among the patches with a non-zero input.
PICKED = (6, 4, 1)
CORE = 0
TRIALS = 6                        # calibration MVMs per round


@pytest.fixture(scope="module")
def network():
    data = load_digits(0)
    floating, _ = train(data, SETTINGS)
    return data, plan_on_rows(floating, LEVELS, REFERENCE, data.train_x[:200], CORE)


def every_position(on_cores, digits):
    """Each layer's patches and outputs for every position of `digits` on the model (noise off), and the
    core's conductances while it held that layer."""
    chip = Chip(ModelTransport(REFERENCE, seed=SEED))
    layers, outputs = [], None
    for k in range(len(on_cores.layers)):
        on_cores.program(chip, k)
        patches = on_cores.patches(k, digits, outputs)
        outputs = on_cores.run(chip, k, patches)
        layers.append((patches, outputs, chip.transport.macro.cores[CORE].g_us.copy()))
    return layers


def picked(patches, count: int, rng) -> np.ndarray:
    """`count` patches of each digit's, among those with an input that is not zero: (digits * count, inputs)."""
    chosen = [rng.choice(np.flatnonzero(np.abs(digit).sum(axis=1)), count, replace=False) for digit in patches]
    return np.concatenate([digit[index] for digit, index in zip(patches, chosen)])


def exercise(chip: Chip, on_cores, inputs) -> tuple[dict, dict]:
    """The same calls on either chip: each layer programmed over the last and its picked MVMs run; the core's
    neuron offsets calibrated once its first layer is on it, as `ChipCNN.program` calibrates after P&V.
    Returns what the host saw, and the wall seconds of each step."""
    seen, seconds = {}, {}

    def step(key, call):
        started = time.perf_counter()
        seen[key] = call()
        seconds[key] = time.perf_counter() - started

    for k, patches in enumerate(inputs):
        step(("program", k), lambda: on_cores.program(chip, k).codes)
        if k == 0:
            step(("trims",), lambda: chip.calibrate(CORE, trials=TRIALS).trims)
        step(("outputs", k), lambda: on_cores.run(chip, k, patches))
    return seen, seconds


def test_each_cnn_layers_mvms_in_cosimulation_equal_the_model_bit_for_bit(network, verilator_chip_build):
    data, on_cores = network
    assert on_cores.rows == 40 and [layer.replicas for layer in on_cores.layers] == [3, 1, 1]
    assert [layer.tiled.weights.shape for layer in on_cores.layers] == [(4, 27), (8, 36), (10, 32)]
    layers = every_position(on_cores, data.test_x[:DIGITS])
    for k, (patches, outputs, g_us) in enumerate(layers):
        assert np.array_equal(outputs, on_cores.expected(k, patches, g_us)), f"layer {k + 1} on the model"
    rng = np.random.default_rng(0)
    inputs = [picked(patches, count, rng) for (patches, _, _), count in zip(layers, PICKED)]

    golden = ModelTransport(REFERENCE, seed=SEED, neuron_noise=True)
    model, _ = exercise(Chip(golden), on_cores, inputs)
    assert np.array_equal(golden.macro.cores[CORE].g_us, layers[-1][2])     # calibration and MVMs moved no cell
    with CosimTransport(config=REFERENCE, seed=SEED, neuron_noise=True, built=verilator_chip_build,
                        log=lambda *_: None) as transport:
        chip = Chip(transport)
        cosim, seconds = exercise(chip, on_cores, inputs)
        assert chip.errors() == []

    assert model.keys() == cosim.keys()
    for key in model:
        assert np.array_equal(model[key], cosim[key]), f"{key} differs: {model[key]} / {cosim[key]}"
    counts = []
    for k, (patches, (_, _, g_us)) in enumerate(zip(inputs, layers)):
        y = model["outputs", k]
        assert y.shape == (len(patches), on_cores.layers[k].tiled.weights.shape[0])
        assert np.count_nonzero(y) > y.size / 2 and len(np.unique(y)) >= 8, f"layer {k + 1}: {y}"    # not vacuous
        # the neurons' noise moves some outputs from the noise-free ones, by a few LSB at most (the class
        # scores most: their threshold is the lowest, so one sample's kT/C noise is the most LSB there)
        off = np.abs(y - on_cores.expected(k, patches, g_us))
        counts.append(dict(mvms=len(patches), outputs=y.size, range=(int(y.min()), int(y.max())),
                           values=len(np.unique(y)), nonzero=round(float(np.count_nonzero(y) / y.size), 2),
                           noise_free=round(float(np.mean(off == 0)), 2), most_off=int(off.max())))
        assert off.max() <= 4 and off.mean() <= 1.5, f"layer {k + 1}: {off}"
    print("\nco-simulation, wall seconds:", {" ".join(map(str, step)): round(s, 1) for step, s in seconds.items()})
    print("per layer:", *counts, sep="\n  ")
