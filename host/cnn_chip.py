"""The digits CNN (`host.cnn`) on the chip's MVM path: its layers on cores, one MVM per image patch.

Mapping (`plan`). Each matrix layer (a convolution's kernels as columns, the dense layer's weights) is
rounded to signed levels (+-7 on a differential pair of the 8-level table) at its own levels_per_unit and
put on the next free cores with `map_tiled` (forward MVMs): one core where it fits, segmented into row
and neuron chunks on several cores, their partial sums added in the host, where it does not. A network
that needs more cores than the chip has is refused, naming the layer. Every layer is programmed once; a
digit then runs one MVM per output position of each convolution and one for the dense layer.

Scale. A hidden layer's threshold code is the one whose output LSB is closest to one unit of its float
weights' W x (`TiledMapping.lsb_per_unit`), so the ADC's code is the float network's clipped ReLU, floored;
the last layer's code puts the largest class score met on the training digits on its top code.

Where the nonlinearities run. ReLU and max pooling run on the host, on the integer outputs it reads
back anyway: a max pool compares outputs of different MVMs (one per position), which no neuron sees
together, and the chip's conversion answers both signs with one threshold register, so a ReLU on chip
would save no conversion steps; on the host each is one comparison per output. Pooling the ADC codes
before the ReLU or after it gives the same result (both are monotonic): the host clips after pooling.

Noise the training should expect (`output_sigma`): per hidden output, the kT/C noise of every sample
(`NeuronParams.noise_sigma_v`, 2^in_bits - 1 samples per MVM) and what calibration leaves of the
comparator offsets (at most 0.2 mV, measured in tests/test_calibration.py, docs/mvm.md), in LSB of the
layer's threshold, for each partial of a segmented layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import ChipConfig
from ..models.neurons import NeuronParams
from .cnn import CNN, PIXEL_BITS, im2col, max_pool, pixel_codes, with_plan
from .compiler import CompileError
from .tiling import TiledMapping, map_tiled

__all__ = ["ChipCNN", "MappedLayer", "program_layers", "layer_patches", "next_codes", "plan", "train_for_chip", "evaluate", "check_fits", "map_network",
           "map_layer", "output_sigma", "CALIBRATED_OFFSET_V"]

#: Comparator offset left after `Chip.calibrate` (volts): under 2 threshold LSB of 0.1 mV (docs/mvm.md).
CALIBRATED_OFFSET_V = 2e-4


@dataclass(frozen=True)
class MappedLayer:
    """One matrix layer on its cores: the tiles of its level matrix held `replicas` times side by side
    (the same kernels on `replicas` row blocks of one core, each block driven with the same inputs)."""
    name: str
    tiled: TiledMapping
    replicas: int

    @property
    def cores(self) -> tuple[int, ...]:
        return self.tiled.cores

    def lsb_per_unit(self, threshold_code: int) -> float:
        """Output LSBs per level of the layer's own W x (a replicated core sums `replicas` copies of it)."""
        return self.replicas * self.tiled.lsb_per_unit("forward", threshold_code)

    def run(self, chip, x, in_bits: int, out_bits: int, conversion: str, threshold_code: int) -> np.ndarray:
        return self.tiled.run(chip, np.tile(x, self.replicas), "forward", in_bits, out_bits, conversion,
                              threshold_code)

    def expected(self, x, out_bits: int, threshold_code: int, g_us=None) -> np.ndarray:
        return self.tiled.expected(np.tile(x, self.replicas), "forward", out_bits, threshold_code, g_us=g_us)


def layer_patches(settings, a: np.ndarray, last: bool) -> np.ndarray:
    """A layer's MVM inputs (images, positions, inputs) from codes `a` (images, side, side, channels): the
    convolutions' im2col patches, or the whole flattened map for the dense layer."""
    return a.reshape(len(a), 1, -1) if last else im2col(a, settings.kernel)


def next_codes(settings, outputs: np.ndarray) -> np.ndarray:
    """The next layer's input codes (images, side, side, channels) from a convolution's outputs (images,
    positions, channels): max-pooled, clipped to the activation range (the ReLU), shifted to the input bits."""
    outputs = np.asarray(outputs)
    side = int(round(math.sqrt(outputs.shape[1])))
    pooled, _ = max_pool(outputs.reshape(len(outputs), side, side, -1), settings.pool)
    return np.clip(pooled, 0, settings.act_top) << settings.input_shift


def program_layers(chip, layers: list[MappedLayer], calibrate: bool = True) -> list:
    """P&V of every tile of `layers` with the host's default recipes, then the neuron offsets of each of
    their cores calibrated; the programming results, tile by tile."""
    results = [result for layer in layers for result in layer.tiled.program(chip)]
    if calibrate:
        for core in (core for layer in layers for core in layer.cores):
            chip.calibrate(core)
    return results


@dataclass
class ChipCNN:
    """A trained, planned network on a chip's cores: one `TiledMapping` and threshold code per layer."""
    network: CNN
    layers: list[MappedLayer]
    codes: list[int]
    conversion: str = "sar"

    @property
    def cores(self) -> tuple[int, ...]:
        return tuple(core for layer in self.layers for core in layer.cores)

    def program(self, chip, calibrate: bool = True) -> list:
        """P&V of every tile with the host's default recipes, then each core's neuron offsets calibrated."""
        return program_layers(chip, self.layers, calibrate)

    def in_bits(self, k: int) -> int:
        return input_bits(self.network.settings, k)

    def run(self, chip, x: np.ndarray) -> np.ndarray:
        """Class scores (integer ADC codes, partials added) of one digit (64 pixels 0..1) on `chip`."""
        s = self.network.settings
        a = pixel_codes(np.asarray(x)[None]).astype(np.int64).reshape(1, s.image, s.image, 1)
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            bits = s.out_bits if k == last else s.act_bits
            y = np.stack([layer.run(chip, p, self.in_bits(k), bits, self.conversion, self.codes[k])
                          for p in layer_patches(s, a, k == last)[0]])
            if k == last:
                return y[0]
            a = next_codes(s, y[None])
        raise AssertionError("unreachable")

    def mvms_per_digit(self) -> int:
        return sum(positions * len(layer.tiled.tiles)
                   for (_, positions, _, _), layer in zip(self.network.settings.shapes(), self.layers))


def map_network(net: CNN, level_codes, config: ChipConfig, replicate: bool = True) -> list[MappedLayer]:
    """Every layer of a network with levels_per_unit on the next free cores (`map_layer`)."""
    top = len(level_codes) - 1
    free = list(range(config.cores))
    layers = []
    names = [f"{kind} {k + 1}" for k, (kind, _, _, _) in enumerate(net.settings.shapes())]
    for name, levels in zip(names, net.levels(top)):
        layers.append(map_layer(name, levels, level_codes, config, free, replicate))
        free = free[len(layers[-1].tiled.tiles):]
    return layers


def map_layer(name: str, levels: np.ndarray, level_codes, config: ChipConfig, free, replicate: bool = True
              ) -> MappedLayer:
    """One layer's level matrix (outputs x inputs) on the first of the `free` cores it needs, forward only
    (see the module docstring); refused naming the layer. With `replicate`, a layer that fits one core is
    held in as many copies as its balancing allows: the rows it leaves idle would otherwise only dilute its
    columns (a neuron sees a cell's share of its column's total conductance), so r copies driven alike put
    r times the charge on a neuron for a total that grows less than r times, against the same kT/C noise,
    and average r cells' errors."""
    free = list(free)
    if not free:
        raise CompileError(f"layer {name} ({levels.shape[0]}x{levels.shape[1]}, outputs x inputs) has no core "
                           f"left: the layers before it take all {config.cores} cores of config "
                           f"'{config.name}'")
    try:
        tiled, copies = map_tiled(levels, level_codes, config, free, "forward"), 1
    except CompileError as error:
        raise CompileError(f"layer {name} does not fit the cores left ({len(free)} of {config.cores}): "
                           f"{error}") from None
    for more in range((config.rows - 1) // levels.shape[1], 1, -1) if replicate and len(tiled.tiles) == 1 else ():
        try:
            tiled, copies = map_tiled(np.tile(levels, (1, more)), level_codes, config, free[:1], "forward"), more
            break
        except CompileError:            # no room to balance this many copies: try fewer
            continue
    return MappedLayer(name, tiled, copies)


def plan(net: CNN, level_codes, config: ChipConfig, calibration_x: np.ndarray, replicate: bool = True
         ) -> tuple[CNN, list[MappedLayer], list[int]]:
    """The network as the chip runs it: levels_per_unit (kept if set, else its largest |w| on the top
    level), the layers mapped, and each layer's threshold code and scale (output LSBs per level of W x).
    The last layer's code from the largest class score on `calibration_x` (pixels 0..1)."""
    top = len(level_codes) - 1
    s = net.settings
    lpu = net.levels_per_unit or [top / float(np.percentile(np.abs(w), s.clip_percentile)) for w in net.weights]
    staged = with_plan(net, lpu, [1.0] * len(net.weights))
    layers = map_network(staged, level_codes, config, replicate)
    codes, scales = [], []
    for k, layer in enumerate(layers[:-1]):
        per_code = layer.lsb_per_unit(1) * _input_gain(s, k)
        codes.append(_code(per_code * lpu[k], f"layer {k + 1}"))
        scales.append(per_code / codes[-1])
    # The last layer: its input as the quantized chip arithmetic gives it, the largest |W x| on the top code.
    staged = with_plan(net, lpu, scales + [1.0])
    levels = staged.levels(top)
    a = pixel_codes(calibration_x).reshape(-1, s.image, s.image, 1)
    for k in range(len(layers) - 1):
        z = scales[k] * (im2col(a, s.kernel) @ levels[k].T)
        side = int(round(math.sqrt(z.shape[1])))
        pooled, _ = max_pool(np.clip(np.floor(z), 0, s.act_top).reshape(len(a), side, side, -1), s.pool)
        a = pooled
    largest = float(np.percentile(np.abs(a.reshape(len(a), -1) @ levels[-1].T), 99.9))
    units_per_lsb = max(largest, 1.0) / ((1 << s.out_bits) - 1)
    per_code = layers[-1].lsb_per_unit(1) * _input_gain(s, len(layers) - 1)
    codes.append(_code(per_code * units_per_lsb, f"layer {len(layers)}"))
    scales.append(per_code / codes[-1])
    return with_plan(net, lpu, scales), layers, codes


def input_bits(settings, k: int) -> int:
    """Input bits of layer k's MVMs: the pixels' 4, or a hidden output's bits and its shift."""
    return PIXEL_BITS if k == 0 else settings.act_bits + settings.input_shift


def _input_gain(settings, k: int) -> int:
    """What layer k's inputs are multiplied by on the chip: hidden outputs enter shifted left by
    `input_shift` bits, so each takes 2^shift times the samples: the charge grows by that, the kT/C noise
    by its square root (NeuRRAM's pulse multiplier does the same with repeated input pulses)."""
    return 1 if k == 0 else 1 << settings.input_shift


def _code(value: float, what: str) -> int:
    code = max(1, int(round(value)))
    if code > 65535:
        raise CompileError(f"{what} needs threshold code {code}; the register holds 1..65535")
    return code


def output_sigma(net: CNN, layers: list[MappedLayer], codes: list[int], config: ChipConfig,
                 neuron: NeuronParams = NeuronParams()) -> list[float]:
    """Each layer's output noise in its LSB (the module docstring): kT/C over the samples of every partial,
    and the calibrated comparator offset of each partial's conversion."""
    sigmas = []
    for k, (layer, code) in enumerate(zip(layers, codes)):
        samples = (1 << input_bits(net.settings, k)) - 1
        per_partial = math.sqrt(samples * neuron.noise_sigma_v ** 2 + CALIBRATED_OFFSET_V ** 2)
        partials = layer.tiled.partials_per_output("forward")
        sigmas.append(per_partial * math.sqrt(partials) / (code * config.threshold_volts_per_lsb))
    return sigmas


def train_for_chip(data, settings, config: ChipConfig, level_codes, spread_us=None, replicate: bool = True,
                   progress=None) -> tuple[CNN, CNN, ChipCNN]:
    """Float and quantization- and noise-aware training (`host.cnn.train`) against this chip's plan: weight
    noise from `spread_us` (default: none), output noise from `output_sigma`. Returns (float, quantized,
    the quantized network on the cores)."""
    from .cnn import train
    step_us = float(np.mean(np.diff(level_codes))) * config.us_per_adc_lsb
    last = {}

    def planned(net: CNN) -> CNN:
        net, layers, codes = plan(net, level_codes, config, data.train_x, replicate)
        last.update(layers=layers, codes=codes)
        return net

    def sigma(net: CNN) -> list[float]:
        return output_sigma(net, last["layers"], last["codes"], config)

    floating, quantized = train(data, settings, planned, spread_us, step_us, sigma,
                                lambda: [layer.replicas for layer in last["layers"]], progress)
    quantized, layers, codes = plan(quantized, level_codes, config, data.train_x, replicate)
    return floating, quantized, ChipCNN(quantized, layers, codes)


def evaluate(data, settings, config: ChipConfig, level_codes, seed: int = 1, samples: int | None = None,
             replicate: bool = True, age_s: float = 86400.0, log=None, progress=None) -> dict:
    """Train (`train_for_chip`, weight noise from `device_spread_us` after P&V and `age_s` of relaxation)
    and score on the held-out digits: float, quantized (ideal cells, the chip's arithmetic), the chip model
    (`ModelTransport(config, seed, neuron_noise=True)`, default device, programmed with the host's default
    recipes, offsets calibrated) fresh and after `chip.relax(age_s)`. `samples` limits the chip's test
    digits (the first ones); float and quantized always use all. Returns a dict: `results` names each
    setting (seed, neuron noise, age), with accuracies, confusion matrices and wall times."""
    import time

    from threadpoolctl import threadpool_limits

    from .chip import Chip, ModelTransport
    from .recipes import level_recipes
    from .training import device_spread_us
    log = log or (lambda text: None)
    check_fits(settings, config, level_codes)
    started = time.perf_counter()
    spread = device_spread_us(config, level_codes, level_recipes(config, level_codes), age_s, settings.seed)
    floating, quantized, on_chip = train_for_chip(data, settings, config, level_codes, spread, replicate,
                                                  progress)
    trained_s = time.perf_counter() - started
    log(f"trained in {trained_s:.1f} s; threshold codes {on_chip.codes}, copies {[l.replicas for l in on_chip.layers]}")
    count = len(data.test_y) if samples is None else min(samples, len(data.test_y))
    x, y = data.test_x, np.asarray(data.test_y)
    rows = [dict(setting="float", accuracy=float(np.mean(floating.predict(x) == y)), digits=len(y)),
            dict(setting="quantized", accuracy=float(np.mean(quantized.predict(x) == y)), digits=len(y),
                 confusion=_confusion(quantized.predict(x), y, settings.classes))]
    with threadpool_limits(limits=1, user_api="blas"):
        chip = Chip(ModelTransport(config, seed=seed, neuron_noise=True), config)
        begun = time.perf_counter()
        programs = on_chip.program(chip)
        program_s = time.perf_counter() - begun
        log(f"programmed and calibrated cores {on_chip.cores} in {program_s:.1f} s "
            f"({sum(r.cells_failed for r in programs)} cells failed P&V)")
        for age in (0.0, age_s):
            if age:
                chip.relax(age)
            begun = time.perf_counter()
            predicted = []
            for done, digit in enumerate(x[:count], 1):
                predicted.append(int(np.argmax(on_chip.run(chip, digit))))
                if progress:
                    progress(f"chip, {age:g} s", done, count, float(np.mean(np.array(predicted) == y[:done])))
            predicted = np.array(predicted)
            rows.append(dict(setting="chip model" if not age else f"chip model after {age / 86400:g} day",
                             accuracy=float(np.mean(predicted == y[:count])), digits=count, seed=seed,
                             neuron_noise=True, age_s=age, wall_s=time.perf_counter() - begun,
                             confusion=_confusion(predicted, y[:count], settings.classes)))
            log(f"{rows[-1]['setting']}: {rows[-1]['accuracy']:.4f} on {count} digits "
                f"({rows[-1]['wall_s']:.0f} s)")
    return dict(config=config.name, seed=seed, training_seed=settings.seed, settings=_jsonable(settings),
                results=rows, train_s=trained_s, program_s=program_s,
                threshold_codes=on_chip.codes, mvms_per_digit=on_chip.mvms_per_digit(),
                layers=[dict(name=l.name, matrix=[l.tiled.weights.shape[0], l.tiled.weights.shape[1] // l.replicas],
                             copies=l.replicas,
                             cores=list(l.cores), tiles=len(l.tiled.tiles),
                             weight_cells=int(sum(2 * t.mapping.rows_used * t.mapping.neurons_used
                                                  for t in l.tiled.tiles)),
                             balance_cells=int(sum(2 * len(t.mapping.balance_rows) * t.mapping.neurons_used
                                                   for t in l.tiled.tiles)))
                        for l in on_chip.layers],
                weight_spread_us=[float(v) for v in spread])


def check_fits(settings, config: ChipConfig, level_codes) -> None:
    """Refuse, before any training, a network whose layers cannot all have cores (`CompileError` naming the
    layer): its initial weights mapped as the trained ones will be."""
    from .cnn import initial
    top = len(level_codes) - 1
    net = initial(settings, np.random.default_rng(settings.seed))
    map_network(with_plan(net, [top / float(np.abs(w).max()) for w in net.weights], [1.0] * len(net.weights)),
                level_codes, config, replicate=False)


def _confusion(predicted, truth, classes: int) -> list[list[int]]:
    matrix = np.zeros((classes, classes), dtype=int)
    np.add.at(matrix, (np.asarray(truth), np.asarray(predicted)), 1)
    return matrix.tolist()


def _jsonable(settings) -> dict:
    from dataclasses import asdict
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(settings).items()}
