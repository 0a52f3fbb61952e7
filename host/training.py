"""Training a spiking network for the chip on scikit-learn's 8x8 digits: in the chip's own terms.

The chip's neurons see voltages, not weights: with rows at the read voltage V_r or 0 V, a voltage-mode
neuron's input is V_r * sum_i x_i (G+_ij / S+_j - G-_ij / S-_j), where S is a column's total conductance
over *all* rows (NeuRRAM's sensing, `models.neurons.column_voltages`). So the network is trained directly
as the conductance levels of every cell of each core, free rows (never driven) included: they only set
the column totals, and training chooses them. No balancing step and no mapping error are left between
what was trained and what is programmed.

The forward pass is the rate (mean-field) view of the chip's spiking rules, which holds because the
neurons run in ADC mode (reset by subtracting the threshold): over a run a neuron's signed spike count is
its integrated input over its threshold, at most one spike per step. With gain k = C_s / (C_s + C_int),
per-step drift k V_r u over threshold theta, the hidden rate is clip(c u, 0, 1) with c = k V_r / theta
(only positive spikes are routed on: a ReLU), and the output's spike count is about T c u. Rates carry
through layers because a hidden spike becomes a row event of the next core one step later.

Quantization- and noise-aware (NeuRRAM's approach, Wan et al., Nature 608, 2022): levels are rounded in
the forward pass (straight-through gradient), and every forward pass draws each cell's conductance error
from the device model's spread after programming and a day of relaxation (`device_spread_us`), so the
weights learn to sit where the chip's errors cost least. The float model is the same network with
unrounded levels and no noise. Adam, cross-entropy on the output's expected spike counts; numpy only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Callable

import numpy as np

from ..config import CONFIGS, ChipConfig
from ..models.macro import AnalogMacro
from ..models.neurons import NeuronParams
from ..models.pv import program_and_verify
from .bounded_npz import Member, NpzError, budget_bytes, read_npz
from .compiler import THRESHOLD_CODE_MAX, Layer

__all__ = ["Digits", "load_digits", "rate_code", "TrainSettings", "TrainedNetwork", "train",
           "device_spread_us", "save_networks", "load_networks", "NetworkFileError", "STEPS_MAX"]

#: Largest pixel value of scikit-learn's digits (4x4 blocks of a 32x32 bitmap counted: 0..16).
PIXEL_MAX = 16

#: Time steps per inference a saved network may ask for. Its inputs are pixels of 0..16 sixteenths, which
#: a rate code renders exactly in 16 steps; 1,024 is 64 times that and keeps the demo's rasters (360 test
#: digits x steps x 64 inputs) at 24 MB. (The chip's 16-bit step register would take 65,535: 1.5 GB.)
STEPS_MAX = 1024
#: Characters of the settings' JSON and entries of a loss history (one per epoch) a saved network may hold.
SETTINGS_CHARS_MAX = 4096
HISTORY_MAX = 100_000


@dataclass(frozen=True)
class Digits:
    train_x: np.ndarray      # (samples, 64) spike probabilities per step, 0..1
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Digits:
    """scikit-learn's bundled 1,797 digits (nothing downloads), split stratified by `seed`."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split
    data = sklearn_digits()
    x = data.data / PIXEL_MAX
    train_x, test_x, train_y, test_y = train_test_split(x, data.target, test_size=test_fraction,
                                                        random_state=seed, stratify=data.target)
    return Digits(train_x, train_y, test_x, test_y)


def rate_code(x: np.ndarray, steps: int) -> np.ndarray:
    """Deterministic rate code: input i spikes at step t when floor((t + 1) x_i + 1/2) passes an integer,
    so over `steps` steps it spikes round(steps x_i) times, evenly spread. Returns (steps, inputs) bool."""
    x = np.asarray(x, dtype=float)
    if np.any(x < 0) or np.any(x > 1):
        raise ValueError("spike probabilities must lie in 0..1")
    t = np.arange(steps + 1)[:, None]
    counts = np.floor(t * x[None, :] + 0.5)
    return np.diff(counts, axis=0) > 0


def device_spread_us(config: ChipConfig, level_codes, recipes, age_s: float = 86400.0, seed: int = 0) -> np.ndarray:
    """Standard deviation (uS) of each level's conductance on the device model, programmed with `recipes`
    and left `age_s` seconds to relax: the noise the training injects. One core of the model, every level
    on an equal share of its cells."""
    macro = AnalogMacro(config, seed)
    array = macro.cores[0]
    codes = np.asarray(level_codes)
    targets = codes[np.arange(config.rows * config.columns).reshape(config.rows, config.columns) % len(codes)]
    program_and_verify(array, targets, recipes, config)
    array.relax(age_s)
    return np.array([array.g_us[targets == code].std() for code in codes])


@dataclass(frozen=True)
class TrainSettings:
    hidden: int = 32
    steps: int = 16                      # time steps of input per inference
    threshold_code: int = 8              # neuron threshold, ChipConfig.threshold_volts_per_lsb each
    v_read_code: int = 6                 # input rows' read voltage, bit-line DAC codes
    epochs: int = 60
    batch: int = 64
    learning_rate: float = 0.05
    seed: int = 0


@dataclass
class TrainedNetwork:
    """Conductance levels of each layer's core: (rows, neurons) for the + and - columns, levels 0..L-1
    (fractional for the float model). Layer k's inputs are rows 0.. of its core."""
    plus: list[np.ndarray]
    minus: list[np.ndarray]
    level_us: np.ndarray                 # conductance of each level
    settings: TrainSettings
    gain: float                          # c: per-step drift over threshold per unit of u
    inputs: int                          # network inputs (rows 0.. of the first core)
    history: list[float] = field(default_factory=list)   # training loss per epoch

    def quantized(self) -> "TrainedNetwork":
        top = len(self.level_us) - 1
        return TrainedNetwork([np.clip(np.rint(p), 0, top).astype(np.int64) for p in self.plus],
                              [np.clip(np.rint(m), 0, top).astype(np.int64) for m in self.minus],
                              self.level_us, self.settings, self.gain, self.inputs, self.history)

    def conductances(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """(G+, G-) in uS of a layer, interpolating between levels for fractional ones."""
        return tuple(np.interp(levels, np.arange(len(self.level_us)), self.level_us)
                     for levels in (self.plus[layer], self.minus[layer]))

    def layers(self) -> list[Layer]:
        """The compiler's view: each layer's levels and its driven rows (integers: quantize first)."""
        widths = [self.inputs] + [p.shape[1] for p in self.plus[:-1]]
        return [Layer(p, m, n) for p, m, n in zip(self.plus, self.minus, widths)]

    def rates(self, x: np.ndarray) -> list[np.ndarray]:
        """Mean-field activity of each layer for inputs `x` (samples, inputs): hidden rates, then the
        output's expected spike count per step (signed)."""
        out = []
        for layer in range(len(self.plus)):
            g_plus, g_minus = self.conductances(layer)
            u = _drive(x, g_plus, g_minus)
            x = np.clip(self.gain * u, 0, 1) if layer < len(self.plus) - 1 else np.clip(self.gain * u, -1, 1)
            out.append(x)
        return out

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.rates(x)[-1].argmax(axis=1)


def _drive(x, g_plus, g_minus):
    """u = x @ (G+/S+ - G-/S-) with x padded by zeros for the free rows."""
    padded = np.zeros((x.shape[0], g_plus.shape[0]))
    padded[:, :x.shape[1]] = x
    return padded @ (g_plus / g_plus.sum(axis=0) - g_minus / g_minus.sum(axis=0))


def neuron_gain(config: ChipConfig, settings: TrainSettings) -> float:
    """c = k V_r / theta: one step's membrane drift in thresholds per unit of u."""
    k = NeuronParams().gain
    v_read = settings.v_read_code * config.bl_volts_per_lsb
    return k * v_read / (settings.threshold_code * config.threshold_volts_per_lsb)


def train(config: ChipConfig, data: Digits, level_us, settings: TrainSettings = TrainSettings(),
          spread_us=None, progress: Callable[[str, int, int, float], None] | None = None
          ) -> tuple[TrainedNetwork, TrainedNetwork]:
    """Train float, then fine-tune quantization- and noise-aware from it. Returns (float, quantized)
    networks: both two layers, 64 pixels -> `settings.hidden` -> 10 classes, each on one core."""
    level_us = np.asarray(level_us, dtype=float)
    if np.any(np.diff(level_us) <= 0) or level_us[0] <= 0:
        raise ValueError("level conductances must be positive and increasing")
    inputs, classes = data.train_x.shape[1], int(data.train_y.max()) + 1
    if settings.hidden > config.neurons or classes > config.neurons:
        raise ValueError(f"a layer of more than {config.neurons} neurons does not fit a core")
    if inputs > config.rows or settings.hidden > config.rows:
        raise ValueError(f"a layer of more than {config.rows} inputs does not fit a core")
    rng = np.random.default_rng(settings.seed)
    top = len(level_us) - 1
    sizes = [(config.rows, settings.hidden), (config.rows, classes)]
    mid = top / 2
    plus = [mid + rng.normal(0, top / 6, size) for size in sizes]
    minus = [mid + rng.normal(0, top / 6, size) for size in sizes]
    network = TrainedNetwork(plus, minus, level_us, settings, neuron_gain(config, settings), inputs)
    floating = _fit(network, data, settings, rng, quantize=False, spread_us=None, epochs=settings.epochs,
                    progress=(lambda *a: progress("float", *a)) if progress else None)
    float_copy = TrainedNetwork([p.copy() for p in floating.plus], [m.copy() for m in floating.minus],
                                level_us, settings, floating.gain, inputs, list(floating.history))
    tuned = _fit(floating, data, settings, rng, quantize=True, spread_us=spread_us,
                 epochs=max(settings.epochs // 2, 1),
                 progress=(lambda *a: progress("quantization-aware", *a)) if progress else None)
    return float_copy, tuned.quantized()


def _fit(network: TrainedNetwork, data: Digits, s: TrainSettings, rng, quantize: bool, spread_us,
         epochs: int, progress) -> TrainedNetwork:
    level_us = network.level_us
    top = len(level_us) - 1
    step_us = np.diff(level_us).mean()
    sigma_of = (lambda levels: np.interp(levels, np.arange(top + 1), spread_us)) if spread_us is not None else None
    params = [*network.plus, *network.minus]
    layers = len(network.plus)
    moments = [(np.zeros_like(p), np.zeros_like(p)) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    t = 0
    x_all, y_all = data.train_x, data.train_y
    for epoch in range(epochs):
        order = rng.permutation(len(x_all))
        losses = []
        for start in range(0, len(order), s.batch):
            pick = order[start:start + s.batch]
            grads, loss = _gradients(params, layers, x_all[pick], y_all[pick], network.gain, s.steps, level_us,
                                     step_us, quantize, sigma_of, rng)
            losses.append(loss)
            t += 1
            lr = s.learning_rate * (0.1 ** (epoch / max(epochs, 1)))     # decays tenfold over the run
            for p, g, (m, v) in zip(params, grads, moments):
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                p -= lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)
                np.clip(p, 0, top, out=p)
        network.history.append(float(np.mean(losses)))
        if progress:
            progress(epoch + 1, epochs, network.history[-1])
    network.plus, network.minus = params[:layers], params[layers:]
    return network


def _gradients(params, layers, x, y, gain, steps, level_us, step_us, quantize, sigma_of, rng):
    """Loss and gradients of the mean-field chip network (see the module docstring)."""
    cache = []
    activity = x
    for layer in range(layers):
        sides = []
        for levels in (params[layer], params[layers + layer]):
            used = np.rint(levels) if quantize else levels          # straight-through in the backward pass
            g = level_us[0] + step_us * used
            if sigma_of is not None:
                g = np.maximum(g + rng.normal(size=g.shape) * sigma_of(used), 0.1 * level_us[0])
            sides.append((g, g.sum(axis=0)))
        padded = np.zeros((activity.shape[0], params[layer].shape[0]))
        padded[:, :activity.shape[1]] = activity
        a_plus, a_minus = sides[0][0] / sides[0][1], sides[1][0] / sides[1][1]
        u = padded @ (a_plus - a_minus)
        cache.append((padded, a_plus, a_minus, sides, u, activity.shape[1]))
        if layer < layers - 1:
            activity = np.clip(gain * u, 0, 1)
    logits = steps * gain * u                                    # expected output spike counts
    logits = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    loss = -np.log(probabilities[np.arange(len(y)), y] + 1e-12).mean()
    d_logits = probabilities
    d_logits[np.arange(len(y)), y] -= 1
    d_u = d_logits * steps * gain / len(y)
    grads = [None] * (2 * layers)
    for layer in reversed(range(layers)):
        padded, a_plus, a_minus, sides, u, width = cache[layer]
        d_a = padded.T @ d_u
        for slot, a, sign, (g, total) in ((layer, a_plus, 1.0, sides[0]), (layers + layer, a_minus, -1.0, sides[1])):
            d_side = sign * d_a
            d_g = (d_side - (a * d_side).sum(axis=0, keepdims=True)) / total
            grads[slot] = d_g * step_us
        if layer:
            d_x = (d_u @ (a_plus - a_minus).T)[:, :width]
            _, _, _, _, u_before, _ = cache[layer - 1]
            active = (gain * u_before > 0) & (gain * u_before < 1)
            d_u = d_x * gain * active
    return grads, float(loss)


def save_networks(path, floating: TrainedNetwork, quantized: TrainedNetwork) -> None:
    """Both networks of a training run in one .npz file (`load_networks` reads it back)."""
    arrays = {}
    for name, network in (("float", floating), ("quantized", quantized)):
        for k, (p, m) in enumerate(zip(network.plus, network.minus)):
            arrays[f"{name}_plus_{k}"], arrays[f"{name}_minus_{k}"] = p, m
        arrays[f"{name}_history"] = np.array(network.history)
    np.savez(path, level_us=quantized.level_us, gain=quantized.gain, inputs=quantized.inputs,
             layers=len(quantized.plus), settings=json.dumps(asdict(quantized.settings)), **arrays)


class NetworkFileError(ValueError):
    """A `--network` file that is not a network `save_networks` wrote, or not one the chip can hold."""


def load_networks(path, config: ChipConfig | None = None) -> tuple[TrainedNetwork, TrainedNetwork]:
    """(float, quantized) networks saved by `save_networks`. Every array is bounded by `config` (by
    default the largest of `CONFIGS`) before it is read, then checked: types, shapes that chain, finite
    levels within the table, settings a chip can run. Anything else raises `NetworkFileError`."""
    cores, rows, neurons, levels = _bounds(config)
    members = {"level_us": Member("f", (levels,)), "gain": Member("f", ()), "inputs": Member("iu", ()),
               "layers": Member("iu", ()), "settings": Member("U", (), 4 * SETTINGS_CHARS_MAX)}
    for name in ("float", "quantized"):
        members[f"{name}_history"] = Member("f", (HISTORY_MAX,))
        for k in range(cores):
            for side in ("plus", "minus"):
                members[f"{name}_{side}_{k}"] = Member("f" if name == "float" else "iu", (rows, neurons))
    budget = budget_bytes(members.values())
    try:
        count = int(read_npz(path, {"layers": members["layers"]}, budget, exact=False)["layers"])
        if not 1 <= count <= cores:
            raise NpzError(f"it has {count} layers; the chip has {cores} cores, one per layer")
        wanted = {name: member for name, member in members.items()
                  if not name[-1].isdigit() or int(name.rsplit("_", 1)[1]) < count}
        data = read_npz(path, wanted, budget)
    except NpzError as error:
        raise NetworkFileError(f"{path} is not a network saved by rram-cim: {error}") from None

    def need(ok: bool, message: str):
        if not ok:
            raise NetworkFileError(f"{path}: {message}")

    level_us = data["level_us"].astype(float)
    need(len(level_us) >= 2 and bool(np.all(np.isfinite(level_us))) and level_us[0] > 0
         and bool(np.all(np.diff(level_us) > 0)),
         f"level conductances {level_us.tolist()} must be at least two finite, positive, increasing uS values")
    top = len(level_us) - 1
    gain = float(data["gain"])
    need(np.isfinite(gain) and gain > 0, f"gain {gain} must be a finite positive number")
    inputs = int(data["inputs"])
    need(1 <= inputs <= rows, f"{inputs} inputs: a core has 1..{rows} rows")
    settings = _settings(str(data["settings"]), neurons, rows, path, need)
    networks = []
    for name, kind in (("float", float), ("quantized", np.int64)):
        plus = [data[f"{name}_plus_{k}"].astype(kind) for k in range(count)]
        minus = [data[f"{name}_minus_{k}"].astype(kind) for k in range(count)]
        width = inputs
        for k, (p, m) in enumerate(zip(plus, minus)):
            layer = f"{name} layer {k}"
            need(p.shape == m.shape, f"{layer}: + levels {p.shape} and - levels {m.shape} must have one shape")
            need(p.shape[1] >= 1 and p.shape[0] >= width,
                 f"{layer} has shape {p.shape}; it takes {width} inputs, so it needs at least {width} rows "
                 "and one neuron")
            for side, values in (("+", p), ("-", m)):
                need(bool(np.all(np.isfinite(values))) and values.min() >= 0 and values.max() <= top,
                     f"{layer} has {side} levels {values.min()}..{values.max()}; levels are finite numbers "
                     f"0..{top} ({top + 1} levels)")
            width = p.shape[1]
        history = data[f"{name}_history"]
        need(bool(np.all(np.isfinite(history))), f"the {name} network's loss history holds NaN or infinity")
        networks.append(TrainedNetwork(plus, minus, level_us, settings, gain, inputs, history.tolist()))
    floating, quantized = networks
    for k in range(count):
        need(floating.plus[k].shape == quantized.plus[k].shape,
             f"layer {k} is {floating.plus[k].shape} in the float network and {quantized.plus[k].shape} "
             "in the quantized one; they must agree")
    need(count < 2 or settings.hidden == quantized.plus[0].shape[1],
         f"settings say {settings.hidden} hidden neurons but layer 0 has {quantized.plus[0].shape[1]}")
    return floating, quantized


def _bounds(config: ChipConfig | None) -> tuple[int, int, int, int]:
    """(cores, rows, neurons, levels) a saved network may use: `config`'s, or the largest of any config."""
    chosen = [config] if config is not None else list(CONFIGS.values())
    return tuple(max(getattr(c, name) for c in chosen) for name in ("cores", "rows", "neurons", "pv_levels"))


def _settings(text: str, neurons: int, rows: int, path, need) -> TrainSettings:
    """`TrainSettings` from their JSON, every field present, of its type and within what a chip runs."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise NetworkFileError(f"{path}: settings are not JSON ({error})") from None
    names = [f.name for f in fields(TrainSettings)]
    need(isinstance(raw, dict) and sorted(raw) == sorted(names),
         f"settings must be a JSON object of exactly {', '.join(names)}")
    limits = {"hidden": (1, min(neurons, rows)), "steps": (1, STEPS_MAX), "threshold_code": (1, THRESHOLD_CODE_MAX),
              "v_read_code": (1, THRESHOLD_CODE_MAX), "epochs": (1, HISTORY_MAX), "batch": (1, 1 << 20),
              "seed": (0, 2 ** 63 - 1)}
    for name, (low, high) in limits.items():
        value = raw[name]
        need(isinstance(value, int) and not isinstance(value, bool) and low <= value <= high,
             f"setting {name} = {value!r} must be a whole number {low}..{high}")
    rate = raw["learning_rate"]
    need(isinstance(rate, (int, float)) and not isinstance(rate, bool) and np.isfinite(rate) and rate > 0,
         f"setting learning_rate = {rate!r} must be a finite positive number")
    return TrainSettings(**raw)
