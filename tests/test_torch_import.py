"""PyTorch import (host/torch_import.py): real torch.nn.Sequential networks on the golden model's MVMs. A small
CNN trained in torch on scikit-learn's digits (seconds, one thread) predicts on the chip model what torch
predicts; its layers take the cores and tiles planned; each construct the chip does not take is refused
naming the layer, with nothing programmed."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from rram_cim.config import ChipConfig
from rram_cim.host.chip import Chip, ModelTransport
from rram_cim.host.compiler import CompileError
from rram_cim.host.torch_import import compile_sequential
from rram_cim.host.training import load_digits
from rram_cim.models.recipes import LEVELS

#: Three 64x64 cores: the convolution on one (in copies), the dense layer's 73 rows split over two.
TRIO = ChipConfig(name="torch-trio", cores=3, rows=64, columns=64, neurons=32)
#: Room for the random networks of the geometry tests, each layer on one core.
WIDE = ChipConfig(name="torch-wide", cores=4, rows=128, columns=128, neurons=64)
#: Held-out digits run on the chip model (each 38 MVMs, ~80 ms).
CHIP_DIGITS = 120


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                # the machine's other core belongs to the other tests
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    data = load_digits(0)
    # torch's layout, (N, 1, 8, 8), in the data set's pixel units 0..16.
    return dict(train_x=data.train_x.reshape(-1, 1, 8, 8) * 16, train_y=data.train_y,
                test_x=data.test_x.reshape(-1, 1, 8, 8) * 16, test_y=data.test_y)


def small_cnn() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(72, 10))


@pytest.fixture(scope="module")
def trained(digits):
    """The small CNN trained in float by torch: 15 epochs of Adam, ~2 s."""
    torch.manual_seed(0)
    model = small_cnn()
    x, y = torch.tensor(digits["train_x"], dtype=torch.float32), torch.tensor(digits["train_y"])
    optimizer = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(15):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 64):
            batch = order[start:start + 64]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def float_scores(model, x) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor(x, dtype=torch.float32)).double().numpy()


@pytest.fixture(scope="module")
def compiled(trained, digits):
    return compile_sequential(trained, (1, 8, 8), TRIO, LEVELS, digits["train_x"][:500])


def test_the_chip_model_predicts_the_digits_torch_predicts(trained, compiled, digits):
    x, y = digits["test_x"], digits["test_y"]
    torch_says = float_scores(trained, x).argmax(1)
    assert np.mean(torch_says == y) > 0.93                           # measured 96.4 %
    # The chip's arithmetic on ideal cells, every held-out digit: weights on +-7 levels, 4-bit activations.
    quantized = compiled.quantized(x).argmax(1)
    assert np.mean(quantized == torch_says) > 0.9                    # measured 94.4 %
    # The chip model: P&V with the default recipes, neuron noise on, offsets calibrated; one BLAS thread, so
    # the noise draws meet the same sums on every machine.
    with threadpool_limits(limits=1, user_api="blas"):
        chip = Chip(ModelTransport(TRIO, seed=1, neuron_noise=True), TRIO)
        failed = sum(result.cells_failed for result in compiled.program(chip))
        on_chip = compiled.run(chip, x[:CHIP_DIGITS]).argmax(1)
    assert failed <= 2
    # Measured here: 93.3 % the class torch gives, 90.8 % correct. Chip seeds 1, 2, 3 run over all 360 digits
    # (other noise draws per MVM): 91.1, 93.1, 93.1 % and 91.1, 91.7, 91.9 %; their first 120 digits 89-92 %
    # and 90 %. The margin is a few digits against another chip's draws; a broken mapping scores near 10 %.
    assert np.mean(on_chip == torch_says[:CHIP_DIGITS]) > 0.85
    assert np.mean(on_chip == y[:CHIP_DIGITS]) > 0.85


def test_the_layers_take_the_cores_and_tiles_planned(compiled):
    conv, dense = compiled.summary()
    # 9 kernel rows and the bias row, copied into the core's idle rows as far as balancing allows.
    assert conv == dict(index=0, kind="Conv2d", matrix=[8, 10], bias=True, cores=[0], tiles=1, copies=5,
                        in_bits=4, out_bits=4, threshold_code=conv["threshold_code"])
    # 72 pooled inputs (sums of four 4-bit codes: 6 bits) and the bias row: two row chunks of a 64-row core.
    assert dense == dict(index=4, kind="Linear", matrix=[10, 73], bias=True, cores=[1, 2], tiles=2, copies=1,
                         in_bits=6, out_bits=6, threshold_code=dense["threshold_code"])
    assert compiled.layers[1].mapped.tiled.row_chunks == 2
    assert compiled.mvms_per_sample() == 36 + 2                     # a 6x6 valid convolution, two dense tiles


def test_on_ideal_cells_the_chip_gives_the_quantized_outputs_exactly(compiled, digits):
    chip = Chip(ModelTransport(TRIO, seed=2, ideal=True), TRIO)
    compiled.program(chip, calibrate=False)
    x = digits["test_x"][:3]
    assert np.array_equal(compiled.run(chip, x), compiled.quantized(x))
    assert np.array_equal(compiled.run(chip, x[0]), compiled.quantized(x)[0])      # one sample, no batch


@pytest.mark.parametrize("layers,shape", [
    (lambda: [nn.Conv2d(2, 6, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
              nn.Linear(24, 5)], (2, 8, 8)),
    (lambda: [nn.Conv2d(1, 4, 3, padding="same", bias=False), nn.AvgPool2d(3, stride=2), nn.Flatten(), nn.ReLU(),
              nn.Linear(36, 3)], (1, 7, 7)),
    (lambda: [nn.Conv2d(1, 3, 2), nn.ReLU(), nn.Conv2d(3, 4, 3, stride=(1, 2)), nn.Dropout(), nn.Identity()],
     (1, 6, 7)),
    (lambda: [nn.Linear(20, 16), nn.ReLU(), nn.Linear(16, 4, bias=False)], (20,)),
])
def test_the_quantized_network_follows_torchs_float_forward(layers, shape):
    """Geometry (im2col order, stride, padding, pooling windows, torch's flatten order) on random networks:
    within the rounding of weights to +-7 levels (~7 % of a dot product per layer) and of 4-8-bit codes,
    where a misplaced input or output would break the correlation."""
    torch.manual_seed(1)
    model = nn.Sequential(*layers()).eval()
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (64,) + shape)
    net = compile_sequential(model, shape, WIDE, LEVELS, x, act_bits=6, out_bits=8)
    want, got = float_scores(model, x), net.quantized(x)
    assert got.shape == want.shape
    error = np.sqrt(np.mean((got - want) ** 2) / np.mean(want ** 2))
    assert error < 0.25                                               # measured 0.09-0.20; misplaced: 0.45-0.80
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.97        # measured 0.991-0.996


@pytest.mark.parametrize("layers,shape,cores,message", [
    ([nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)], (1, 8, 8), 3,
     r"layer 1 \(BatchNorm2d\) is not supported: .* fold it into the Conv2d or Linear before it"),
    ([nn.Flatten(), nn.Linear(64, 10), nn.LeakyReLU()], (1, 8, 8), 3, r"layer 2 \(LeakyReLU\) is not supported"),
    ([nn.Sequential(nn.Linear(64, 10))], (64,), 3, r"layer 0 \(Sequential\) is not supported"),
    ([type("ScaledLinear", (nn.Linear,), {})(64, 10)], (64,), 3, r"layer 0 \(ScaledLinear\) is not supported"),
    ([nn.Conv2d(1, 4, 3, dilation=2)], (1, 8, 8), 3, r"layer 0 \(Conv2d\) has dilation=\(2, 2\): only \(1, 1\)"),
    ([nn.Conv2d(2, 4, 3, groups=2)], (2, 8, 8), 3, r"layer 0 \(Conv2d\) has groups=2"),
    ([nn.Conv2d(1, 4, 3, padding=1, padding_mode="reflect")], (1, 8, 8), 3, r"layer 0 \(Conv2d\) pads with 'reflect'"),
    ([nn.Conv2d(1, 4, (3, 5))], (1, 8, 8), 3, r"layer 0 \(Conv2d\) has a 3x5 kernel: only square"),
    ([nn.Conv2d(1, 4, 9)], (1, 8, 8), 3, r"layer 0 \(Conv2d\)'s 9x9 kernel does not fit its 8x8 input"),
    ([nn.Conv2d(3, 4, 3)], (1, 8, 8), 3, r"layer 0 \(Conv2d\) takes 3 channels .* has shape \(1, 8, 8\)"),
    ([nn.Conv2d(1, 4, 3), nn.Linear(36, 10)], (1, 8, 8), 3,
     r"layer 1 \(Linear\) takes 36 features; its input has shape \(4, 6, 6\) \(put a Flatten before it\)"),
    ([nn.Flatten(), nn.Linear(60, 10)], (1, 8, 8), 3, r"layer 1 \(Linear\) takes 60 features; .* shape \(64,\)"),
    ([nn.Flatten(0), nn.Linear(64, 10)], (1, 8, 8), 3, r"layer 0 \(Flatten\) flattens dims 0..-1"),
    ([nn.Conv2d(1, 4, 3), nn.AvgPool2d(2, padding=1)], (1, 8, 8), 3, r"layer 1 \(AvgPool2d\) has padding=1"),
    ([nn.Conv2d(1, 4, 3), nn.MaxPool2d(4, ceil_mode=True)], (1, 8, 8), 3, r"layer 1 \(MaxPool2d\) .*ceil_mode=True"),
    ([nn.Conv2d(1, 4, 3), nn.MaxPool2d(7)], (1, 8, 8), 3, r"layer 1 \(MaxPool2d\)'s 7x7 window does not fit"),
    ([nn.Flatten(), nn.ReLU()], (1, 8, 8), 3, r"has no Linear or Conv2d"),
    # the small CNN needs three cores: its dense layer's 73 rows take two of the reference-sized chip's
    ([nn.Conv2d(1, 8, 3), nn.ReLU(), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(72, 10)], (1, 8, 8), 2,
     r"layer 4 \(Linear\) does not fit the cores left \(1 of 2\): a 10x73 matrix .* needs 2 row chunks"),
    ([nn.Linear(32, 10), nn.ReLU(), nn.Linear(10, 10)], (32,), 1,
     r"layer 2 \(Linear\) \(10x11, outputs x inputs\) has no core left: the layers before it take all 1 cores"),
])
def test_what_the_chip_does_not_take_is_refused_naming_the_layer_and_nothing_is_programmed(layers, shape, cores,
                                                                                            message):
    config = TRIO.replace(cores=cores)
    transport = ModelTransport(config, seed=0)
    cells = [array.g_us.copy() for array in transport.macro.cores]
    model = nn.Sequential(*layers)
    weights = [p.detach().clone() for p in model.parameters()]
    x = np.random.default_rng(0).uniform(0, 1, (8,) + shape)
    with pytest.raises(CompileError, match=message) as refused:
        compile_sequential(model, shape, config, LEVELS, x)
    assert "\n" not in str(refused.value)
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), weights))        # the model unchanged
    assert all(np.array_equal(array.g_us, g) for array, g in zip(transport.macro.cores, cells))   # no cell moved


def test_inputs_that_do_not_match_the_network_are_refused(compiled, digits):
    with pytest.raises(CompileError, match=r"calibration_x has shape \(5, 64\); .* \(N, 1, 8, 8\)"):
        compile_sequential(small_cnn(), (1, 8, 8), TRIO, LEVELS, np.ones((5, 64)))
    with pytest.raises(CompileError, match=r"input_shape = \(8, 8\): one sample as"):
        compile_sequential(small_cnn(), (8, 8), TRIO, LEVELS, np.ones((5, 8, 8)))
    with pytest.raises(CompileError, match="takes a torch.nn.Sequential, not Linear"):
        compile_sequential(nn.Linear(64, 10), (64,), TRIO, LEVELS, np.ones((5, 64)))
    with pytest.raises(CompileError, match=r"takes samples of shape \(1, 8, 8\) .*, not \(64,\)"):
        compiled.quantized(np.ones(64))


def test_the_package_imports_without_torch_and_the_import_names_the_install(monkeypatch):
    code = "import sys, rram_cim.host.torch_import, rram_cim.host; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "torch", None)                  # as if torch were not installed
    with pytest.raises(ImportError, match=r"needs torch: pip install -e '\.\[torch\]'"):
        compile_sequential(None, (64,), TRIO, LEVELS, np.ones((5, 64)))
