"""Networks from NIR (the Neuromorphic Intermediate Representation, Pedersen et al., Nature
Communications 15, 2024), as snnTorch, Norse, Sinabs and others export them, onto the chip.

Supported graphs are chains:

    Input -> (Linear | Affine with zero bias) -> (IF | LIF) -> ... -> Output

Each pair becomes one layer on one core. Weights are quantized per layer to the level table's signed
range and balanced (`compiler.compile_layer`), so a voltage-mode neuron's drift per step is
k V_r (delta G / S) sum_i w_i x_i, with one column total S for the layer. NIR's neuron is
v += r W x, spiking when v > theta and resetting to v_reset (= 0). The chip has one threshold register
for all cores, so each layer's weight scale is chosen to make its threshold land on the same code:
  - the code is the lowest layer's threshold rounded down;
  - layers whose natural threshold is higher get coarser weights;
  - the scale is bisected, the balanced column total following it;
  - the residual error of the shared code is reported.

LIF nodes map to the chip's LIF mode: a leak of dt/tau per step (snnTorch's beta = 1 - dt/tau), with
one leak for the whole network, and the input scaled by r dt / tau. NIR's neurons fire positive spikes
only, so the negative threshold is set to its maximum.

Refused, with the reason:
  - biases;
  - a non-zero v_reset or v_leak;
  - thresholds or leaks that differ within the network (a single register each);
  - any other node type;
  - a graph that is not a chain;
  - anything `compile_network` refuses (layers, rows, neurons, levels).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from ..config import ChipConfig, read_limit_code
from ..models.macro import LEAK_SCALE
from ..models.neurons import NeuronMode, NeuronParams
from .compiler import (THRESHOLD_CODE_MAX, CompileError, Layer, NetworkMapping, check_read_code,
                       compile_network)

__all__ = ["NirNetwork", "layers_from_nir", "read_nir"]

#: snnTorch's export time step (its `export_to_nir` default), for LIF time constants.
SNNTORCH_DT = 1e-4
#: Arrays a NIR file of a chip-sized network holds, with room: per layer a handful (weights, r, tau,
#: thresholds, resets, leaks, types), plus the graph's edges, inputs and outputs.
NIR_DATASETS_MAX = 1000
#: Bisection steps of a layer's weight scale onto the shared threshold, and the agreement that needs none.
SCALE_ITERATIONS = 30
SCALE_TOLERANCE = 1e-4


@dataclass(frozen=True)
class NirNetwork:
    layers: list[Layer]
    threshold_code: int
    v_read_code: int
    mode: NeuronMode
    leak_code: int
    #: NIR weight units per level difference, per layer.
    scales: tuple[float, ...]
    #: Worst relative error of a layer's threshold once the shared code is rounded.
    threshold_error: float

    def compile(self, level_codes, config: ChipConfig) -> NetworkMapping:
        return compile_network(self.layers, level_codes, config, self.threshold_code, self.v_read_code,
                               mode=self.mode, negative_threshold_code=THRESHOLD_CODE_MAX,
                               leak_code=self.leak_code)


def read_nir(source, config: ChipConfig | None = None):
    """A NIR graph, or the path of a NIR file (HDF5, as `nir.write` makes it). With `config`, every
    array in the file is bounded by what a core holds before any is read."""
    import nir
    if isinstance(source, nir.NIRGraph):
        return source
    path = pathlib.Path(source)
    if not path.is_file():
        raise CompileError(f"cannot read NIR file {path}: no such file")
    if config is not None:
        _check_file_sizes(path, config)
    try:
        return nir.read(str(path))
    except Exception as error:              # h5py and nir raise many kinds
        # nir asserts on a node type it does not know, with no message: name the node and its type.
        reason = _one_line(error) or _unknown_node_types(path) or f"{type(error).__name__} in the NIR reader"
        raise CompileError(f"cannot read NIR file {path}: {reason}") from None


def _datasets(path: pathlib.Path, take=lambda name, item: (name, item.shape, item.dtype)) -> list:
    """`take(name, dataset)` of every dataset in an HDF5 file that it does not answer None for; by
    default (name, shape, dtype): metadata only, no data read."""
    import h5py
    found = []

    def visit(name, item):
        if isinstance(item, h5py.Dataset) and (taken := take(name, item)) is not None:
            found.append(taken)
    with h5py.File(path, "r") as handle:
        handle.visititems(visit)
    return found


def _check_file_sizes(path: pathlib.Path, config: ChipConfig) -> None:
    """Refuse a file holding an array larger than any a core can use (a weight matrix of rows x
    columns), before `nir.read` loads (and decompresses) them all."""
    largest = max(config.rows, config.columns) ** 2
    try:
        datasets = _datasets(path)
    except Exception as error:              # not HDF5, truncated, a directory...
        raise CompileError(f"cannot read NIR file {path}: {_one_line(error) or type(error).__name__}") from None
    if len(datasets) > NIR_DATASETS_MAX:
        raise CompileError(f"NIR file {path} holds {len(datasets)} arrays; a network that fits the chip "
                           f"holds at most {NIR_DATASETS_MAX}")
    for name, shape, _ in datasets:
        size = int(np.prod(shape, dtype=object)) if shape is not None else 0
        if size > largest:
            raise CompileError(f"NIR file {path}: {name} has shape {shape}; a core of {config.rows}x"
                               f"{config.columns} cells uses at most {largest} values of one array")


def _unknown_node_types(path: pathlib.Path) -> str:
    """The nodes whose `type` NIR does not define, as a reason; empty if none is found."""
    import nir
    known = {cls.__name__ for cls in _subclasses(nir.NIRNode)}
    try:
        strange = [(name.rsplit("/", 2)[-2], _text(value)) for name, value in _types(path)
                   if _text(value) not in known]
    except Exception:                       # the file is too damaged to say more
        return ""
    if not strange:
        return ""
    node, kind = strange[0]
    return f"node {node!r} has type {kind!r}, which NIR does not define (IF, LIF, Linear, Affine, ... map)"


def _types(path: pathlib.Path) -> list:
    """(name, value) of every node's `type` dataset."""
    return _datasets(path, lambda name, item: (name, item[()]) if name.endswith("/type") else None)


def _one_line(error: Exception) -> str:
    """An exception's message on one line (h5py's span several)."""
    return " ".join(str(error).split())


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _subclasses(cls) -> set:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _subclasses(sub)
    return out


def _chain(graph) -> list:
    """The graph's nodes from its Input to its Output, refusing anything that is not a chain."""
    import nir
    inputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise CompileError(f"the graph has {len(inputs)} Input nodes; the chip takes one input layer")
    following: dict[str, list[str]] = {}
    for source, target in graph.edges:
        following.setdefault(source, []).append(target)
    chain, name, seen = [], inputs[0], set()
    while True:
        targets = following.get(name, [])
        if len(targets) != 1:
            raise CompileError(f"node {name!r} feeds {len(targets)} nodes: only chains of layers map to cores")
        name = targets[0]
        if name in seen:
            raise CompileError(f"node {name!r} closes a loop: recurrent graphs do not map to the router yet")
        seen.add(name)
        node = graph.nodes[name]
        if isinstance(node, nir.Output):
            return chain
        chain.append((name, node))


def _real(values, what: str) -> np.ndarray:
    """`values` as finite real floats; complex, text or non-finite values refused (never truncated)."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise CompileError(f"{what} must be real numbers, not {array.dtype}")
    array = array.astype(float)
    if not np.all(np.isfinite(array)):
        raise CompileError(f"{what} must be finite, not NaN or infinity")
    return array


def _uniform(values, what: str) -> float:
    values = _real(values, what).ravel()
    if values.size == 0 or np.ptp(values) > 1e-9 * max(np.abs(values).max(), 1e-30):
        raise CompileError(f"{what} differs between neurons; the chip has one register for it")
    return float(values[0])


def _per_neuron(values, neurons: int, what: str) -> np.ndarray:
    """A NIR parameter given per neuron (or once for all) as `neurons` values."""
    values = _real(values, what)
    if values.size not in (1, neurons):
        raise CompileError(f"{what} has {values.size} values for {neurons} neurons")
    return np.broadcast_to(values.ravel(), (neurons,))


def _layers(chain, dt: float, config: ChipConfig):
    """[(effective weights inputs x neurons, threshold, leak per step)] from Linear/Affine + IF/LIF pairs."""
    import nir
    if len(chain) % 2:
        raise CompileError("the chain must alternate weights (Linear/Affine) and neurons (IF/LIF)")
    out = []
    for (w_name, weights), (n_name, neurons) in zip(chain[0::2], chain[1::2]):
        if isinstance(weights, nir.Affine):
            if np.any(np.asarray(weights.bias) != 0):
                raise CompileError(f"{w_name!r} has a bias: the chip's neurons have none (train without bias)")
        elif not isinstance(weights, nir.Linear):
            raise CompileError(f"{w_name!r} is a {type(weights).__name__}; expected Linear or Affine")
        w = _real(weights.weight, f"the weights of {w_name!r}")
        if w.ndim != 2:
            raise CompileError(f"{w_name!r} has {w.ndim}-D weights; only dense layers map to a core")
        outputs, inputs = w.shape
        if not 1 <= outputs <= config.neurons:
            raise CompileError(f"{w_name!r} has {outputs} neurons: a core has 1..{config.neurons}")
        if not 1 <= inputs <= config.rows:
            raise CompileError(f"{w_name!r} has {inputs} inputs: a core has {config.rows} rows")
        if isinstance(neurons, nir.IF):
            scale, leak = _per_neuron(neurons.r, outputs, f"r of {n_name!r}"), 0.0
        elif isinstance(neurons, nir.LIF):
            if np.any(np.asarray(neurons.v_leak) != 0):
                raise CompileError(f"{n_name!r} has a non-zero v_leak: the chip leaks towards 0 V")
            tau = _per_neuron(neurons.tau, outputs, f"tau of {n_name!r}")
            if np.any(tau <= 0):
                raise CompileError(f"{n_name!r} has tau {tau.min():g} s: a time constant must be positive "
                                   f"(the chip leaks dt/tau = {dt:g} s / tau per step)")
            leak = _uniform(dt / tau, f"the leak dt/tau of {n_name!r}")
            scale = _per_neuron(neurons.r, outputs, f"r of {n_name!r}") * dt / tau
        else:
            raise CompileError(f"{n_name!r} is a {type(neurons).__name__}; the chip's neurons are IF or LIF")
        if neurons.v_reset is not None and np.any(np.asarray(neurons.v_reset) != 0):
            raise CompileError(f"{n_name!r} resets to a non-zero v_reset: the chip resets to 0")
        threshold = _uniform(neurons.v_threshold, f"the threshold of {n_name!r}")
        if threshold <= 0:
            raise CompileError(f"{n_name!r} has threshold {threshold}: it must be positive")
        out.append(((scale[:, None] * w).T, threshold, leak))
    return out


def layers_from_nir(source, level_codes, config: ChipConfig, v_read_code: int | None = None,
                    dt: float = SNNTORCH_DT) -> NirNetwork:
    """Map a NIR graph (or file) to layers, one shared threshold code and read code (the highest the
    read-disturb limit allows, by default): see the module docstring."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.integer, np.floating)) or not 0 < dt < np.inf:
        raise CompileError(f"dt = {dt!r}: the time step must be a finite positive number of seconds")
    graph = read_nir(source, config)
    parts = _layers(_chain(graph), dt, config)
    if not parts:
        raise CompileError("the graph has no layer")
    leaks = {leak for _, _, leak in parts}
    if len(leaks) > 1:
        raise CompileError(f"layers leak differently ({sorted(leaks)}): the chip has one leak register")
    leak = leaks.pop()
    v_read_code = read_limit_code(config) if v_read_code is None else v_read_code
    check_read_code(v_read_code, config)
    # Weights and thresholds many decades apart overflow the scale search; say so rather than crash.
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            return _fit(parts, leak, np.asarray(level_codes), config, v_read_code)
    except (FloatingPointError, OverflowError) as error:
        raise CompileError(f"weights and thresholds span a range the chip's registers cannot express "
                           f"({error})") from None


def _fit(parts, leak: float, codes: np.ndarray, config: ChipConfig, v_read_code: int) -> NirNetwork:
    """Weight scales that put every layer's threshold on one shared code (module docstring)."""
    top = len(codes) - 1
    step_us = (codes[1] - codes[0]) * config.us_per_adc_lsb
    drift = NeuronParams().gain * v_read_code * config.bl_volts_per_lsb * step_us   # x (1 / S) per level
    scales = []
    for weights, _, _ in parts:
        peak = np.abs(weights).max()
        if peak == 0:
            raise CompileError("a layer has only zero weights")
        scales.append(peak / top)
    def mapped(k: int, scale: float) -> tuple[Layer, float]:
        """Layer k at weight `scale`, and its threshold as a membrane voltage."""
        weights, threshold, _ = parts[k]
        layer = Layer.from_weights(np.rint(weights / scale).astype(np.int64), codes, config)
        total_us = (codes[layer.plus[:, 0]] * config.us_per_adc_lsb).sum()
        return layer, threshold * drift / (total_us * scale)

    first = [mapped(k, scale) for k, scale in enumerate(scales)]
    lsb = config.threshold_volts_per_lsb
    # The shared threshold: the lowest layer's, rounded down to a whole code, so that every layer only
    # coarsens its weights (never beyond the level table) to meet it exactly.
    code = int(np.floor(min(natural for _, natural in first) / lsb * (1 + SCALE_TOLERANCE)))
    if not 1 <= code <= THRESHOLD_CODE_MAX:
        raise CompileError(f"the thresholds come to {min(n for _, n in first) * 1e3:.4f} mV on the membrane, outside "
                           f"the register's 1..{THRESHOLD_CODE_MAX} codes of {lsb * 1e3} mV")
    target = code * lsb
    layers, natural = [], []
    for k, (layer, volts) in enumerate(first):
        if volts > target * (1 + SCALE_TOLERANCE):
            # Coarser weights lower a layer's threshold voltage (its column total shrinks more slowly than
            # the scale grows): bisect the scale until it lands on the shared target.
            low, high = scales[k], scales[k] * volts / target * 2
            for _ in range(SCALE_ITERATIONS):
                middle = (low + high) / 2
                layer, volts = mapped(k, middle)
                low, high = (middle, high) if volts > target else (low, middle)
            scales[k] = high
            layer, volts = mapped(k, high)
        layers.append(layer)
        natural.append(volts)
    error = max(abs(target - n) / n for n in natural)
    mode = NeuronMode.LIF if leak > 0 else NeuronMode.IF
    leak_code = int(round(leak * LEAK_SCALE))
    if mode is NeuronMode.LIF and not 1 <= leak_code < LEAK_SCALE:
        raise CompileError(f"a leak of {leak:.4g} per step rounds to {leak_code}/{LEAK_SCALE}: outside the register")
    return NirNetwork(layers, code, v_read_code, mode, leak_code, tuple(scales), error)
