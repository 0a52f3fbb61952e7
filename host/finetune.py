"""Chip-in-the-loop progressive fine-tuning (issue 20, item 3): program a layer, measure what the chip's
neurons of that layer actually do on the training set, retrain the layers after it on those measurements,
program the next.

Offline training (`host.training`) already injects the device model's conductance spread, but only as a
distribution: the chip that is programmed carries one particular draw of it, plus neuron offsets and kT/C
noise the training never sees. Once layer k is on the chip its errors are fixed, and the layers after it
can learn them. NeuRRAM did this layer by layer on its chip ("chip-in-the-loop progressive fine-tuning",
Wan et al., Nature 608, 2022, Methods): the outputs of the programmed layers were measured on the training
set and the remaining layers fine-tuned on them.

For the two-layer digits network (64 -> hidden -> 10) that is one round:

1. layer 0 alone is compiled as a one-layer network and programmed onto core 0 through the `Chip` API;
   its neurons' spikes go to the host, so any transport (model, co-simulation, board) can measure them;
2. every training digit runs through it; a hidden neuron's positive spike count over the run, divided by
   the steps, is the rate layer 1 receives in the full network (negative spikes are routed nowhere there:
   the ReLU);
3. layer 1 is retrained from its offline levels on those measured rates, quantization- and noise-aware
   as `host.training` trains it (device spread injected, Adam, cross-entropy on expected spike counts);
4. the retrained layer 1 is programmed onto core 1, and the two-layer network configured.

`one_shot` programs the offline network as it is, for the comparison. `mean_field_retrain` is the
control: the same retraining on the software model's own hidden rates, which separates what the chip's
measurements bring from what a few more epochs of training on layer 1 bring.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..config import ChipConfig
from ..protocol import decode_event
from .compiler import NetworkMapping, compile_network
from .training import Digits, TrainedNetwork, TrainSettings, _fit, rate_code

__all__ = ["FinetuneError", "FinetuneSettings", "Finetuned", "hidden_rates", "retrain_last", "one_shot",
           "finetune", "mean_field_retrain", "accuracy"]

Progress = Callable[[int, int], None]


class FinetuneError(ValueError):
    """A request fine-tuning cannot carry out; the message says what would be right."""


@dataclass(frozen=True)
class FinetuneSettings:
    #: Epochs of retraining layer 1 on the measured rates (offline QAT runs `TrainSettings.epochs // 2`).
    epochs: int = 30
    #: Learning rate of the retraining (Adam on levels, decayed tenfold over the epochs); below the offline
    #: 0.05 since it starts from trained levels.
    learning_rate: float = 0.02
    #: Passes of the training set through layer 0 on the chip: each pass is a fresh draw of the neuron
    #: noise, so more passes show layer 1 more of the noise it must tolerate.
    passes: int = 1
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "passes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise FinetuneError(f"{name} = {value!r}: a whole number, 1 or more")
        if not (isinstance(self.learning_rate, (int, float)) and np.isfinite(self.learning_rate)
                and self.learning_rate > 0):
            raise FinetuneError(f"learning_rate = {self.learning_rate!r}: a finite positive number")


@dataclass
class Finetuned:
    """What `finetune` leaves: the network now on the chip (layer 0 as trained, layer 1 retrained), its
    mapping, the measured hidden rates of the training digits (passes x samples, hidden) and the pulses
    each core's programming took."""
    network: TrainedNetwork
    mapping: NetworkMapping
    measured: np.ndarray
    programs: list


def _check_network(network: TrainedNetwork) -> None:
    if not isinstance(network, TrainedNetwork):
        raise FinetuneError(f"network must be a TrainedNetwork (host.training.train), not {type(network).__name__}")
    if len(network.plus) != 2:
        raise FinetuneError(f"fine-tuning here takes a two-layer network; this one has {len(network.plus)} layers")
    if not all(np.issubdtype(np.asarray(p).dtype, np.integer) for p in (*network.plus, *network.minus)):
        raise FinetuneError("the network's levels must be integers: pass the quantized network")


def _compile(layers, network: TrainedNetwork, level_codes, config: ChipConfig) -> NetworkMapping:
    s = network.settings
    return compile_network(layers, level_codes, config, s.threshold_code, s.v_read_code)


def hidden_rates(chip, mapping: NetworkMapping, x: np.ndarray, steps: int,
                 progress: Progress | None = None) -> np.ndarray:
    """Each neuron's positive spike count over `steps` steps of rate-coded input, divided by `steps`, for
    every row of `x` (samples, inputs), read from the host's output events of a one-layer `mapping`
    (configured on `chip`). Returns (samples, neurons) rates in 0..1."""
    if len(mapping.targets) != 1:
        raise FinetuneError(f"measure one layer at a time: the mapping has {len(mapping.targets)} layers")
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[1] != len(mapping.input_rows):
        raise FinetuneError(f"inputs have shape {x.shape}; the layer takes (samples, {len(mapping.input_rows)})")
    neurons = len(mapping.outputs)
    rates = np.zeros((len(x), neurons))
    for i, sample in enumerate(x):
        run = chip.infer(mapping.host_steps(rate_code(sample, steps)))
        for word in run.events:
            tick, negative, core, neuron = decode_event(word)
            if not tick and not negative and core == 0 and neuron < neurons:
                rates[i, neuron] += 1
        if progress:
            progress(i + 1, len(x))
    return rates / steps


def retrain_last(network: TrainedNetwork, hidden: np.ndarray, labels: np.ndarray, spread_us,
                 settings: FinetuneSettings = FinetuneSettings()) -> TrainedNetwork:
    """`network` with its last layer retrained from its levels on `hidden` (samples, hidden neurons), the
    rates its inputs take, and `labels`; quantization- and noise-aware (`spread_us` per level, as
    `host.training.device_spread_us` measures it). Layer 0 is returned unchanged."""
    _check_network(network)
    hidden = np.asarray(hidden, dtype=float)
    labels = np.asarray(labels)
    width = network.plus[1].shape[1]
    if hidden.ndim != 2 or hidden.shape[1] != network.plus[0].shape[1]:
        raise FinetuneError(f"hidden rates have shape {hidden.shape}; layer 1 takes (samples, "
                            f"{network.plus[0].shape[1]})")
    if len(labels) != len(hidden):
        raise FinetuneError(f"{len(labels)} labels for {len(hidden)} samples")
    if len(hidden) == 0 or hidden.min() < 0 or hidden.max() > 1 or not np.all(np.isfinite(hidden)):
        raise FinetuneError("hidden rates must be finite spike probabilities per step, 0..1, for some samples")
    if labels.min() < 0 or labels.max() >= width:
        raise FinetuneError(f"labels must be classes 0..{width - 1}")
    if spread_us is not None and len(spread_us) != len(network.level_us):
        raise FinetuneError(f"spread_us has {len(spread_us)} values for {len(network.level_us)} levels")
    s: TrainSettings = replace(network.settings, learning_rate=settings.learning_rate)
    last = TrainedNetwork([network.plus[1].astype(float)], [network.minus[1].astype(float)], network.level_us,
                          s, network.gain, hidden.shape[1])
    data = Digits(hidden, labels, hidden[:0], labels[:0])
    rng = np.random.default_rng([settings.seed, 20])
    tuned = _fit(last, data, s, rng, quantize=True, spread_us=spread_us, epochs=settings.epochs,
                 progress=None).quantized()
    return TrainedNetwork([network.plus[0], tuned.plus[0]], [network.minus[0], tuned.minus[0]], network.level_us,
                          network.settings, network.gain, network.inputs, list(network.history))


def one_shot(chip, network: TrainedNetwork, level_codes, recipes) -> tuple[NetworkMapping, list]:
    """Program the offline network as trained, every core, and configure it: the baseline."""
    _check_network(network)
    mapping = _compile(network.layers(), network, level_codes, chip.config)
    return mapping, chip.load(mapping, recipes)


def finetune(chip, network: TrainedNetwork, train_x: np.ndarray, train_y: np.ndarray, level_codes, recipes,
             spread_us, settings: FinetuneSettings = FinetuneSettings(),
             progress: Callable[[str, int, int], None] | None = None) -> Finetuned:
    """Program `network`'s layer 0, measure its hidden rates on the training digits through `chip`,
    retrain layer 1 on them, program it and configure the two-layer network (the module docstring)."""
    _check_network(network)
    if not isinstance(settings, FinetuneSettings):
        raise FinetuneError(f"settings must be FinetuneSettings, not {type(settings).__name__}")
    train_x = np.asarray(train_x, dtype=float)
    if train_x.ndim != 2 or train_x.shape[1] != network.inputs or len(train_x) != len(train_y):
        raise FinetuneError(f"training inputs {train_x.shape} and {len(train_y)} labels: give (samples, "
                            f"{network.inputs}) inputs and one label each")
    config = chip.config
    layers = network.layers()
    first = _compile(layers[:1], network, level_codes, config)
    programs = [chip.program(0, first.targets[0], recipes)]
    chip.configure(first)
    measured = []
    for p in range(settings.passes):
        report = (lambda done, total, p=p: progress(f"measuring layer 0, pass {p + 1}", done, total)) \
            if progress else None
        measured.append(hidden_rates(chip, first, train_x, network.settings.steps, report))
    measured = np.array(measured)
    labels = np.tile(np.asarray(train_y), settings.passes)
    if progress:
        progress("retraining layer 1", 0, 1)
    tuned = retrain_last(network, measured.reshape(-1, measured.shape[-1]), labels, spread_us, settings)
    if progress:
        progress("retraining layer 1", 1, 1)
    mapping = _compile(tuned.layers(), tuned, level_codes, config)
    if not np.array_equal(mapping.targets[0], first.targets[0]):
        raise AssertionError("layer 0 compiled differently alone and in the network")
    programs.append(chip.program(1, mapping.targets[1], recipes))
    chip.configure(mapping)
    return Finetuned(tuned, mapping, measured, programs)


def mean_field_retrain(network: TrainedNetwork, train_x: np.ndarray, train_y: np.ndarray, spread_us,
                       settings: FinetuneSettings = FinetuneSettings()) -> TrainedNetwork:
    """The control: layer 1 retrained exactly as `finetune` does, on the software model's hidden rates
    (`TrainedNetwork.rates`) instead of the chip's."""
    _check_network(network)
    return retrain_last(network, network.rates(np.asarray(train_x, dtype=float))[0], train_y, spread_us, settings)


def accuracy(chip, mapping: NetworkMapping, x: np.ndarray, y: np.ndarray, steps: int,
             progress: Progress | None = None) -> float:
    """Share of the digits `x` the configured `chip` classifies as `y` (largest signed output count; ties
    go to the lowest class, as argmax does)."""
    right = 0
    for i, (sample, label) in enumerate(zip(x, y)):
        scores, _ = chip.classify(mapping, rate_code(sample, steps))
        right += int(scores.argmax() == label)
        if progress:
            progress(i + 1, len(x))
    return right / max(len(x), 1)
