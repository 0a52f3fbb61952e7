"""The digits CNN (host/cnn.py, host/cnn_chip.py): im2col, training, mapping onto cores, the chip's MVMs on
the golden model (neuron noise off), and refusals. Small networks and few digits: seconds, one core."""

import numpy as np
import pytest

from rram_cim.config import REFERENCE, ChipConfig
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.cnn import CNNSettings, conv2d_direct, im2col, max_pool, shifted, train
from rram_cim.host.cnn_chip import ChipCNN, map_network, plan
from rram_cim.host.compiler import CompileError
from rram_cim.host.training import load_digits
from rram_cim.models.recipes import LEVELS

TINY = CNNSettings(channels=(4, 8), epochs=6, aware_epochs=0, seed=3)
#: Three 64x64 cores: the tiny network's three layers, one core each.
TRIO = ChipConfig(name="cnn-trio", cores=3, rows=64, columns=64, neurons=32)
#: Small cores, as test_tiled_mapping's: a convolution of 18 rows takes two of them.
SMALL = ChipConfig(name="cnn-small", cores=6, rows=16, columns=16, neurons=8)


@pytest.fixture(scope="module")
def digits():
    return load_digits(0)


@pytest.fixture(scope="module")
def tiny(digits):
    floating, _ = train(digits, TINY)
    return floating


@pytest.mark.parametrize("kernel,channels", [(1, 1), (3, 2), (5, 3)])
def test_im2col_times_the_kernels_equals_a_direct_convolution(kernel, channels):
    rng = np.random.default_rng(kernel)
    images = rng.normal(size=(3, 8, 8, channels))
    kernels = rng.normal(size=(4, kernel, kernel, channels))            # C_out, k, k, C_in
    patches = im2col(images, kernel)
    assert patches.shape == (3, 64, kernel * kernel * channels)
    unrolled = (patches @ kernels.reshape(4, -1).T).reshape(3, 8, 8, 4)
    np.testing.assert_allclose(unrolled, conv2d_direct(images, kernels), atol=1e-12)


def test_max_pool_takes_each_window_maximum_and_marks_one_winner():
    a = np.arange(16.0).reshape(1, 4, 4, 1)
    a[0, 0, 0, 0] = 5.0                              # a tie with a[0, 1, 1] in the first window
    pooled, mask = max_pool(a, 2)
    assert pooled[0, :, :, 0].tolist() == [[5.0, 7.0], [13.0, 15.0]]
    assert mask.sum() == 4 and mask[0, 0, 0, 0] and not mask[0, 1, 1, 0]


def test_shifted_digits_are_the_same_digits_moved_by_at_most_one_pixel():
    rng = np.random.default_rng(0)
    codes = rng.integers(1, 16, (50, 64)).astype(float)
    moved = shifted(codes, CNNSettings(), rng).reshape(50, 8, 8)
    inner = codes.reshape(50, 8, 8)[:, 1:7, 1:7]
    for image, source in zip(moved, inner):          # the middle 6x6 of the source is in every moved copy
        assert any(np.array_equal(image[dy:dy + 6, dx:dx + 6], source) for dy in range(3) for dx in range(3))
    assert not np.array_equal(moved.reshape(50, 64), codes)


def test_a_tiny_training_run_beats_chance_by_far(digits, tiny):
    accuracy = np.mean(tiny.predict(digits.test_x) == digits.test_y)
    assert accuracy > 0.7                            # chance is 0.1
    assert tiny.history[-1] < tiny.history[0]


def test_the_float_gradients_match_finite_differences(digits):
    from rram_cim.host.cnn import _backward, _forward, _loss, initial, pixel_codes
    settings = CNNSettings(channels=(2, 3), seed=2)
    net = initial(settings, np.random.default_rng(2))
    net.weights = [3 * w for w in net.weights]                  # outputs spread over the clip's range
    codes, labels = pixel_codes(digits.train_x[:6]), digits.train_y[:6]

    def loss():
        return _loss(_forward(net, codes, None, None)[0], labels)[0]

    scores, cache = _forward(net, codes, None, None)
    grads = _backward(net, cache, _loss(scores, labels)[1], quantized=False)
    rng = np.random.default_rng(0)
    for layer, grad in enumerate(grads):
        for index in zip(*(rng.integers(0, n, 4) for n in grad.shape)):
            saved = net.weights[layer][index]
            net.weights[layer][index] = saved + 1e-6
            up = loss()
            net.weights[layer][index] = saved - 1e-6
            down = loss()
            net.weights[layer][index] = saved
            assert (up - down) / 2e-6 == pytest.approx(grad[index], rel=1e-3, abs=1e-7), (layer, index)
    assert any(np.abs(g).max() > 1e-4 for g in grads)


def test_training_is_deterministic_for_a_seed(digits):
    settings = CNNSettings(channels=(2, 4), epochs=1, aware_epochs=0, seed=5)
    first, _ = train(digits, settings)
    second, _ = train(digits, settings)
    assert all(np.array_equal(a, b) for a, b in zip(first.weights, second.weights))


def test_a_mapped_layer_on_the_golden_model_gives_the_mappings_expected_outputs(digits, tiny):
    net, layers, codes = plan(tiny, LEVELS, TRIO, digits.train_x[:200])
    conv = layers[0]
    assert conv.replicas > 1 and conv.cores == (0,)              # 9 rows copied into the idle ones
    rng = np.random.default_rng(1)
    patches = rng.integers(0, 16, (12, 9))
    ideal = ModelTransport(TRIO, seed=1, ideal=True)
    chip = Chip(ideal, TRIO)
    conv.tiled.program(chip)
    got = np.array([conv.run(chip, p, 4, 4, "sar", codes[0]) for p in patches])
    assert np.array_equal(got, np.array([conv.expected(p, 4, codes[0]) for p in patches]))
    assert np.abs(got).max() >= 4                                # the outputs use the range, not all zeros
    # after P&V (noise off) the chip answers what its own conductances give
    device = ModelTransport(TRIO, seed=2)
    chip = Chip(device, TRIO)
    conv.tiled.program(chip)
    g_us = {0: device.macro.cores[0].g_us.copy()}
    got = np.array([conv.run(chip, p, 4, 4, "count", codes[0]) for p in patches])
    assert np.array_equal(got, np.array([conv.expected(p, 4, codes[0], g_us) for p in patches]))


def test_the_whole_network_on_ideal_cells_gives_the_quantized_scores(digits, tiny):
    net, layers, codes = plan(tiny, LEVELS, TRIO, digits.train_x[:200])
    on_chip = ChipCNN(net, layers, codes)
    chip = Chip(ModelTransport(TRIO, seed=4, ideal=True), TRIO)
    on_chip.program(chip, calibrate=False)
    assert on_chip.mvms_per_digit() == 64 + 16 + 1
    x = digits.test_x[:4]
    got = np.array([on_chip.run(chip, digit) for digit in x])
    assert np.array_equal(got, net.scores(x))
    assert np.abs(got).max() > 8


def test_a_layer_larger_than_a_core_is_segmented_and_its_partials_added(digits):
    settings = CNNSettings(channels=(2, 2), epochs=1, aware_epochs=0, seed=1)
    floating, _ = train(digits, settings)
    net, layers, codes = plan(floating, LEVELS, SMALL, digits.train_x[:100])
    conv2 = layers[1]
    assert conv2.tiled.row_chunks == 2 and len(conv2.cores) == 2           # 18 rows on 16-row cores
    chip = Chip(ModelTransport(SMALL, seed=1, ideal=True), SMALL)
    conv2.tiled.program(chip)
    rng = np.random.default_rng(2)
    for patch in rng.integers(0, 16, (6, 18)):
        assert np.array_equal(conv2.run(chip, patch, 4, 4, "sar", codes[1]), conv2.expected(patch, 4, codes[1]))


@pytest.mark.parametrize("changes,message", [
    (dict(kernel=9), "9x9 kernel does not fit an 8x8 image"),
    (dict(kernel=0), "0x0 kernel does not fit"),
    (dict(pool=3), "3x3 pool does not tile the 8x8 output"),
    (dict(channels=(4, 4, 4)), "convolution 3.s 3x3 kernel does not fit its 2x2 input"),
])
def test_a_network_that_does_not_fit_the_image_is_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        CNNSettings(**changes).shapes()


def test_im2col_refuses_a_kernel_larger_than_the_image():
    with pytest.raises(ValueError, match="5x5 kernel does not fit a 4x4 image"):
        im2col(np.zeros((1, 4, 4, 1)), 5)


def test_layers_that_do_not_fit_the_cores_are_refused_naming_the_layer(tiny):
    planned = tiny.__class__(tiny.settings, tiny.weights, [10.0] * 3, [1.0] * 3)
    with pytest.raises(CompileError, match="layer dense 3 .* has no core left: the layers before it take all 2"):
        map_network(planned, LEVELS, REFERENCE)            # three layers, two cores
    with pytest.raises(CompileError, match="layer conv 2 does not fit the cores left"):
        map_network(planned, LEVELS, SMALL.replace(cores=3))   # conv 2 (36 rows) needs 3 cores of 16 rows


def test_the_evaluation_names_every_setting_and_the_noise_aware_network_stays_accurate(digits):
    from dataclasses import replace

    from rram_cim.host.cnn_chip import evaluate
    report = evaluate(digits, replace(TINY, aware_epochs=2), TRIO, LEVELS, seed=1, samples=3)
    rows = {row["setting"]: row for row in report["results"]}
    assert list(rows) == ["float", "quantized", "chip model", "chip model after 1 day"]
    assert rows["quantized"]["accuracy"] > 0.7 and rows["quantized"]["digits"] == len(digits.test_y)
    for name, age in (("chip model", 0.0), ("chip model after 1 day", 86400.0)):
        assert rows[name]["seed"] == 1 and rows[name]["neuron_noise"] is True and rows[name]["age_s"] == age
        assert rows[name]["digits"] == 3 and np.sum(rows[name]["confusion"]) == 3
    assert report["mvms_per_digit"] == 81 and len(report["threshold_codes"]) == 3
    assert [layer["matrix"] for layer in report["layers"]] == [[4, 9], [8, 36], [10, 32]]


def test_the_default_network_is_refused_on_the_reference_chip_before_any_training():
    from rram_cim.config import NEURRAM_LIKE
    from rram_cim.host.cnn_chip import check_fits
    with pytest.raises(CompileError, match="layer conv 2 does not fit the cores left .1 of 2."):
        check_fits(CNNSettings(), REFERENCE, LEVELS)
    check_fits(CNNSettings(), NEURRAM_LIKE, LEVELS)             # the bench's default chip holds it
