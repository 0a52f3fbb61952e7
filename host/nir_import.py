"""Networks from NIR (the Neuromorphic Intermediate Representation, Pedersen et al., Nature
Communications 15, 2024), as snnTorch, Norse, Sinabs and others export them, onto the chip.

Supported graphs are chains:

    Input -> [Flatten] -> (Linear | Affine with zero bias) -> (IF | LIF) -> ... -> Output

Each weight and neuron pair becomes one layer on one core; Flatten nodes are dropped (a core's inputs are
flat). Leading batch dimensions of 1 (exports traced from a (1, n) sample) are dropped, and the shapes
checked here instead of by nir's type check, which refuses them. Weights are quantized per layer to the
level table's signed range and balanced (`compiler.compile_layer`), so a voltage-mode neuron's drift per
step is k V_r (delta G / S) sum_i w_i x_i, with one column total S for the layer. NIR's neuron is
v += r W x, spiking when v > theta and resetting (below).

Neuron settings: each core has its own page (threshold, leak, mode), so each layer keeps its own. A
layer's weight scale is bisected until its threshold lands exactly on a whole threshold code (its
natural threshold rounded down: weights only ever coarsen). On a config with one page for every core
(`per_core_neurons` off) every layer is fitted to the lowest layer's code, and layers whose leak or mode
differ are refused.

Firing rule: the chip fires at v >= its threshold, NIR (snnTorch, Norse) at v > theta. The threshold is
placed at theta (1 + FIRING_MARGIN), so a membrane exactly on theta (frequent with weights on a grid)
does not fire; `fires_at_threshold=True` keeps theta for exporters that fire at v >= theta (Sinabs).

Time step: LIF nodes map to the chip's LIF mode with a leak of dt/tau per step and the input scaled by
r dt / tau. dt is the `dt` argument, else the file's own record (a `dt` in the graph's or a neuron's
metadata), else snnTorch's export step 1e-4 s with a warning. A leak that rounds outside 1..255/256 is
refused with a message that names dt. snnTorch's IF (Leaky with beta = 1) exports tau = r = inf: an IF.

Reset: each layer's IF or LIF neurons reset to zero or by subtracting the threshold (NeuronCodes.reset,
per core), as the `reset` argument says ("zero", "subtract", once or per layer), else as the file says:
nir >= 1.0.5 records v_reset (0: reset to zero), nir 1.0.4's IF and LIF have no v_reset and subtract the
threshold by their own equations. Two exporters lose their neurons' mechanism, and an import that relies
on the file is warned about once, naming `reset`:
  - snnTorch 1.0 writes v_reset = 0 whatever the Leaky's reset_mechanism (its default subtracts); its
    LIFs are recognised by r = tau / 1e-4 s (tau = dt / (1 - beta), r = tau / dt at its hard-coded dt)
    and import as reset to zero;
  - Sinabs 3.1 (nir 1.0.4) writes no v_reset whatever its reset_fn, nor its spike_fn: such files import
    as subtracting, NIR 1.0.4's rule and Sinabs's default, but its MultiSpike neurons fire several spikes
    a step where the chip fires one.
The chip subtracts at the step it fires and leaks the remainder the next step; snnTorch subtracts the
threshold after the next step's leak, so a leaky subtracting snnTorch neuron keeps (1 - beta) theta less
per spike than the chip's: exact for IF, close for LIF. A subtracting layer keeps its exact weights and
takes the threshold code (down to half its natural one) and column total that land its threshold
closest to theta in weight units, never coarser weights: every spike carries that error forward.

Warnings: a threshold within a few comparator offsets (the neuron noise's sigma) is warned about.

Refused, with the reason and the node (by type, name and layer):
  - biases;
  - a non-zero v_reset or v_leak; a `reset` that is not "zero", "subtract" or None;
  - thresholds or leaks that differ within a layer (a single register each per core);
  - any other node type;
  - a graph that is not a chain;
  - anything `compile_network` refuses (layers, rows, neurons, levels).
"""

from __future__ import annotations

import inspect
import pathlib
import warnings
from dataclasses import dataclass

import numpy as np

from ..config import ChipConfig, read_limit_code
from ..models.macro import LEAK_SCALE, NeuronCodes
from ..models.neurons import NeuronMode, NeuronParams, NeuronReset
from .compiler import (THRESHOLD_CODE_MAX, CompileError, Layer, NetworkMapping, check_read_code,
                       compile_network, neuron_reset)

__all__ = ["NirNetwork", "NirWarning", "layers_from_nir", "read_nir"]

#: snnTorch's export time step (its `export_to_nir` hard-codes it), the dt assumed when none is known.
SNNTORCH_DT = 1e-4
#: Arrays a NIR file of a chip-sized network holds, with room: per layer a handful (weights, r, tau,
#: thresholds, resets, leaks, types), plus the graph's edges, inputs and outputs.
NIR_DATASETS_MAX = 1000
#: Bisection steps of a layer's weight scale onto its threshold code, and the agreement that needs none.
SCALE_ITERATIONS = 30
SCALE_TOLERANCE = 1e-4
#: NIR fires at v > theta, the chip at v >= threshold: the threshold goes this far (relative) above theta,
#: so a membrane on theta stays below it (below theta for exporters that fire at v >= theta), far above
#: the float rounding of the membrane's sums.
FIRING_MARGIN = 1e-6
#: A layer's threshold under this many comparator offsets (NeuronParams.offset_sigma_v) is warned about:
#: with the neuron noise on, the offsets move its spikes.
OFFSET_WARNING = 10
#: What else a `reset` may be, as refusals say.
FILES_RESET = ", or None: as the file says"
#: A leak code further than this (relative) from dt/tau is warned about.
LEAK_ROUNDING_WARNING = 0.05


class NirWarning(UserWarning):
    """What an import did that its user may not expect (an assumed dt, a rounded leak, an unknown reset)."""


@dataclass(frozen=True)
class _Part:
    """One weight and neuron pair as the file gives it, before dt is known."""
    #: Effective weights (inputs x neurons): NIR's W scaled by r (IF) or r / tau (LIF, times dt later).
    weights: np.ndarray
    threshold: float
    #: A LIF's time constant in seconds, None for an IF.
    tau: float | None
    #: (weights, neurons) node names.
    names: tuple[str, str]
    #: The reset the node states: "zero" (v_reset = 0) or "subtract" (no v_reset: nir 1.0.4's equations).
    reset: str
    #: snnTorch's LIF signature, r = tau / 1e-4 s: its v_reset = 0 does not say how it resets.
    snntorch: bool


@dataclass(frozen=True)
class NirNetwork:
    layers: list[Layer]
    #: Each layer's neuron settings (threshold code, leak code, mode, reset); the negative threshold is
    #: the register's maximum, since NIR's neurons fire positive spikes only.
    neurons: tuple[NeuronCodes, ...]
    v_read_code: int
    #: NIR weight units per level difference, per layer.
    scales: tuple[float, ...]
    #: Worst relative error of a layer's threshold once its code is rounded.
    threshold_error: float
    #: The time step the leaks and LIF input scales were computed with, seconds, and where it came from.
    dt: float
    dt_source: str
    #: The nodes of each layer (weights, neurons), by their names in the graph.
    nodes: tuple[tuple[str, str], ...]

    @property
    def threshold_codes(self) -> tuple[int, ...]:
        return tuple(codes.thresh_pos for codes in self.neurons)

    def compile(self, level_codes, config: ChipConfig) -> NetworkMapping:
        return compile_network(self.layers, level_codes, config, [c.thresh_pos for c in self.neurons],
                               self.v_read_code, mode=[NeuronMode(c.mode) for c in self.neurons],
                               negative_threshold_code=THRESHOLD_CODE_MAX, leak_code=[c.leak for c in self.neurons],
                               reset=[NeuronReset(c.reset) for c in self.neurons])


def read_nir(source, config: ChipConfig | None = None):
    """A NIR graph, or the path of a NIR file (HDF5, as `nir.write` makes it). With `config`, every
    array in the file is bounded by what a core holds before any is read. nir's own type check is off:
    it refuses the batch dimension of 1 that exports traced from a batched sample carry; `layers_from_nir`
    checks the shapes it uses."""
    import nir
    if isinstance(source, nir.NIRGraph):
        return source
    path = pathlib.Path(source)
    if not path.is_file():
        raise CompileError(f"cannot read NIR file {path}: no such file")
    if config is not None:
        _check_file_sizes(path, config)
    try:
        if "type_check" in inspect.signature(nir.read).parameters:
            return nir.read(str(path), type_check=False)
        return nir.read(str(path))          # nir < 1.0.5 has no type check to turn off
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


def _resets_missing(path: pathlib.Path) -> list[str]:
    """The IF and LIF nodes of a NIR file that record no v_reset (nir 1.0.4's IF has none)."""
    try:
        types = {name.rsplit("/", 1)[0]: _text(value) for name, value in _types(path)}
        resets = {name.rsplit("/", 1)[0] for name, _, _ in _datasets(path) if name.endswith("/v_reset")}
    except Exception:                       # read_nir has read it; nothing more to say
        return []
    return [group.rsplit("/", 1)[-1] for group, kind in types.items() if kind in ("IF", "LIF") and group not in resets]


def _label(name: str, node, layer: int | None = None) -> str:
    """A node as messages name it: its type and name, and its layer (nirtorch names nodes '0', '1', ...)."""
    where = f" (layer {layer})" if layer is not None else ""
    return f"{type(node).__name__} {name!r}{where}"


def _chain(graph) -> list:
    """The graph's nodes from its Input to its Output, refusing anything that is not a chain; the Input
    node comes first."""
    import nir
    inputs = [name for name, node in graph.nodes.items() if isinstance(node, nir.Input)]
    if len(inputs) != 1:
        raise CompileError(f"the graph has {len(inputs)} Input nodes; the chip takes one input layer")
    following: dict[str, list[str]] = {}
    for source, target in graph.edges:
        following.setdefault(source, []).append(target)
    chain, name, seen = [(inputs[0], graph.nodes[inputs[0]])], inputs[0], set()
    while True:
        targets = following.get(name, [])
        if len(targets) != 1:
            raise CompileError(f"{_label(name, graph.nodes[name])} feeds {len(targets)} nodes: only chains of "
                               "layers map to cores")
        name = targets[0]
        if name in seen:
            raise CompileError(f"node {name!r} closes a loop: recurrent graphs do not map to the router yet")
        seen.add(name)
        node = graph.nodes[name]
        if isinstance(node, nir.Output):
            return chain
        chain.append((name, node))


def _unbatched(array: np.ndarray) -> np.ndarray:
    """`array` without leading dimensions of 1 beyond its last (a batch of one from a traced sample)."""
    while array.ndim > 1 and array.shape[0] == 1:
        array = array[0]
    return array


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
    if values.size == 0 or np.ptp(values) > 1e-6 * max(np.abs(values).max(), 1e-30):
        raise CompileError(f"{what} differs between neurons; a core has one register for it")
    return float(values[0])


def _per_neuron(values, neurons: int, what: str, finite: bool = True) -> np.ndarray:
    """A NIR parameter given per neuron (or once for all, or with a batch dimension of 1) as `neurons`
    values."""
    values = _unbatched(np.asarray(values))
    values = _real(values, what) if finite else np.asarray(values, dtype=float)
    if values.size not in (1, neurons) or (values.size > 1 and values.ndim > 1):
        raise CompileError(f"{what} has shape {values.shape} for {neurons} neurons")
    return np.broadcast_to(values.ravel(), (neurons,))


def _metadata_dt(graph) -> float | None:
    """A time step the exporter recorded in the graph's or a node's metadata, seconds."""
    for node in [graph, *graph.nodes.values()]:
        value = (getattr(node, "metadata", None) or {}).get("dt")
        if value is not None:
            try:
                return float(np.asarray(value).ravel()[0])
            except (TypeError, ValueError, IndexError):
                raise CompileError(f"the file records dt = {value!r}, which is not a number of seconds") from None
    return None


def _layers(chain, config: ChipConfig, unrecorded: set[str]) -> list[_Part]:
    """The Linear/Affine + IF/LIF pairs; Flatten nodes dropped. A LIF's leak is left as tau (seconds)
    until dt is known. `unrecorded`: neurons whose file holds no v_reset (nir fills in 0 when it reads)."""
    import nir
    (input_name, input_node), body = chain[0], [(n, node) for n, node in chain[1:] if not isinstance(node, nir.Flatten)]
    out = []
    for k in range(0, len(body), 2):
        layer = k // 2
        if k + 1 == len(body):
            name, node = body[k]
            raise CompileError(f"{_label(name, node, layer)} ends the chain without neurons: the chain must "
                               "alternate weights (Linear/Affine) and neurons (IF/LIF)")
        (w_name, weights), (n_name, neurons) = body[k], body[k + 1]
        w_label, n_label = _label(w_name, weights, layer), _label(n_name, neurons, layer)
        if isinstance(weights, (nir.IF, nir.LIF)) or isinstance(neurons, (nir.Linear, nir.Affine)):
            raise CompileError(f"{w_label} is followed by {n_label}: the chain must alternate weights "
                               "(Linear/Affine) and neurons (IF/LIF)")
        if isinstance(weights, nir.Affine):
            if np.any(np.asarray(weights.bias) != 0):
                raise CompileError(f"{w_label} has a bias: the chip's neurons have none (train without bias)")
        elif not isinstance(weights, nir.Linear):
            raise CompileError(f"{w_label} is a {type(weights).__name__}; expected Linear or Affine")
        w = _real(weights.weight, f"the weights of {w_label}")
        while w.ndim > 2 and w.shape[0] == 1:
            w = w[0]
        if w.ndim != 2:
            raise CompileError(f"{w_label} has {w.ndim}-D weights; only dense layers map to a core")
        outputs, inputs = w.shape
        if not 1 <= outputs <= config.neurons:
            raise CompileError(f"{w_label} has {outputs} neurons: a core has 1..{config.neurons}")
        if not 1 <= inputs <= config.rows:
            raise CompileError(f"{w_label} has {inputs} inputs: a core has {config.rows} rows")
        if layer == 0:
            shape = [int(n) for n in np.asarray(next(iter(input_node.input_type.values()), [])).ravel()]
            while len(shape) > 1 and shape[0] == 1:         # a batch of one
                shape.pop(0)
            if shape and int(np.prod(shape)) != inputs:
                raise CompileError(f"Input {input_name!r} has shape {tuple(shape)}, {int(np.prod(shape))} values, "
                                   f"but {w_label} takes {inputs} inputs")
        elif inputs != out[-1].weights.shape[1]:
            raise CompileError(f"{w_label} takes {inputs} inputs but layer {layer - 1} has "
                               f"{out[-1].weights.shape[1]} neurons")
        snntorch = False
        if isinstance(neurons, nir.IF):
            scale, tau = _per_neuron(neurons.r, outputs, f"r of {n_label}"), None
        elif isinstance(neurons, nir.LIF):
            if np.any(np.asarray(neurons.v_leak) != 0):
                raise CompileError(f"{n_label} has a non-zero v_leak: the chip leaks towards 0 V")
            tau = _per_neuron(neurons.tau, outputs, f"tau of {n_label}", finite=False)
            r = _per_neuron(neurons.r, outputs, f"r of {n_label}", finite=False)
            if np.all(np.isposinf(tau)) and np.all(np.isposinf(r)):
                # snnTorch's Leaky(beta=1) exports tau = dt / (1 - beta) = inf and r = tau / dt = inf:
                # no leak, and an input scale r dt / tau of 1. An IF.
                scale, tau, snntorch = np.ones(outputs), None, True
            else:
                tau, r = _real(tau, f"tau of {n_label}"), _real(r, f"r of {n_label}")
                snntorch = bool(np.allclose(r * SNNTORCH_DT, tau, rtol=1e-5, atol=0))
                if np.any(tau <= 0):
                    raise CompileError(f"{n_label} has tau {tau.min():g} s: a time constant must be positive "
                                       "(the chip leaks dt/tau per step)")
                tau = _uniform(tau, f"tau of {n_label} (the leak dt/tau)")
                scale = r / tau                             # times dt, once it is known
        else:
            raise CompileError(f"{n_label} is a {type(neurons).__name__}; the chip's neurons are IF or LIF")
        v_reset = None if n_name in unrecorded else getattr(neurons, "v_reset", None)     # nir 1.0.4 has none
        if v_reset is not None and np.any(np.asarray(v_reset) != 0):
            raise CompileError(f"{n_label} resets to a non-zero v_reset: the chip resets to 0 or by subtracting "
                               "the threshold")
        threshold = _uniform(_unbatched(np.asarray(neurons.v_threshold)), f"the threshold of {n_label}")
        if threshold <= 0:
            raise CompileError(f"{n_label} has threshold {threshold}: it must be positive")
        out.append(_Part((scale[:, None] * w).T, threshold, tau, (w_name, n_name),
                         "zero" if v_reset is not None else "subtract", snntorch and v_reset is not None))
    return out


def _resets(parts: list[_Part], reset, config: ChipConfig) -> list[NeuronReset]:
    """Each layer's reset: the argument's, else the file's; an import that relies on a file which lost
    its exporter's mechanism is warned about once, naming the argument."""
    if isinstance(reset, (list, tuple)):
        if len(reset) != len(parts):
            raise CompileError(f"reset: {len(reset)} values for {len(parts)} layers (give one, or one per layer)")
        given = list(reset)
    else:
        given = [reset] * len(parts)
    chosen, snntorch, sinabs = [], [], []
    for k, (part, value) in enumerate(zip(parts, given)):
        what = f"layer {k}'s reset" if isinstance(reset, (list, tuple)) else "reset"
        if value is not None:
            chosen.append(neuron_reset(value, what, FILES_RESET))
            continue
        chosen.append(neuron_reset(part.reset))
        if part.snntorch:
            snntorch.append(part.names[1])
        elif part.reset == "subtract":
            sinabs.append(part.names[1])
    lost = []
    if snntorch:
        lost.append(f"LIF nodes {snntorch} look like snnTorch's export (r = tau / {SNNTORCH_DT:g} s), which writes "
                    "v_reset = 0 whatever the Leaky's reset_mechanism (its default subtracts): imported as reset "
                    "to zero")
    if sinabs:
        lost.append(f"neurons {sinabs} record no v_reset, as Sinabs writes them (nir 1.0.4) whatever its reset_fn "
                    "and spike_fn: imported as subtracting the threshold, nir 1.0.4's rule and Sinabs's default "
                    "(the chip fires at most one spike per step, where Sinabs's default MultiSpike fires more)")
    if lost:
        warnings.warn(f"the file does not say how its neurons reset: {'; '.join(lost)}. Pass reset='zero' or "
                      "reset='subtract' (or one per layer) as the exporting network did", NirWarning, stacklevel=3)
    if getattr(config, "neuron_pages", 1) == 1 and len(set(chosen)) > 1:
        raise CompileError(f"layers reset differently ({', '.join(r.name.lower() for r in chosen)}), and config "
                           f"{config.name!r} has one page of neuron settings for every core (per_core_neurons off): "
                           "use a config with per_core_neurons on")
    return chosen


def layers_from_nir(source, level_codes, config: ChipConfig, v_read_code: int | None = None,
                    dt: float | None = None, fires_at_threshold: bool = False, reset=None) -> NirNetwork:
    """Map a NIR graph (or file) to layers, each layer's neuron settings and a read code (the highest the
    read-disturb limit allows, by default): see the module docstring. `dt` is the exporter's time step in
    seconds (snnTorch 1e-4; Norse 1.1: the square of its dt, since its export writes tau = dt * tau;
    Sinabs: 1, its taus are in steps); by default the file's record of it, else snnTorch's.
    `fires_at_threshold`: the exporter's neurons fire at v >= theta (Sinabs), not NIR's v > theta.
    `reset`: "zero", "subtract" or None (the file's), once or one per layer."""
    if dt is not None and (isinstance(dt, bool) or not isinstance(dt, (int, float, np.integer, np.floating))
                           or not 0 < dt < np.inf):
        raise CompileError(f"dt = {dt!r}: the time step must be a finite positive number of seconds")
    if reset is not None and not isinstance(reset, (list, tuple)):
        neuron_reset(reset, "reset", FILES_RESET)                # refused before the file is read
    graph = read_nir(source, config)
    unrecorded = set() if isinstance(source, type(graph)) else set(_resets_missing(pathlib.Path(source)))
    parts = _layers(_chain(graph), config, unrecorded)
    if not parts:
        raise CompileError("the graph has no layer")
    resets = _resets(parts, reset, config)
    leaky = any(part.tau is not None for part in parts)
    if dt is not None:
        dt_source = "argument"
    elif (dt := _metadata_dt(graph)) is not None:
        dt_source = "file"
        if not 0 < dt < np.inf:
            raise CompileError(f"the file records dt = {dt!r}: a time step must be a finite positive number of seconds")
    else:
        dt, dt_source = SNNTORCH_DT, "default"
        if leaky:
            warnings.warn(f"the graph's LIF time constants are in seconds but it records no time step: assuming "
                          f"snnTorch's dt = {SNNTORCH_DT:g} s; pass dt (Norse 1.1: its dt squared; Sinabs: 1)",
                          NirWarning, stacklevel=2)
    layers, leaks = [], []
    for k, part in enumerate(parts):
        weights, threshold, tau, names = part.weights, part.threshold, part.tau, part.names
        if tau is None:
            layers.append((weights, threshold)), leaks.append(0)
            continue
        leak = dt / tau
        code = int(round(leak * LEAK_SCALE))
        label = f"LIF {names[1]!r} (layer {k})"
        if not 1 <= code < LEAK_SCALE:
            raise CompileError(f"{label}: tau = {tau:g} s at dt = {dt:g} s ({dt_source}) is a leak of {leak:.4g} "
                               f"per step, which rounds to {code}/{LEAK_SCALE}; the leak register holds "
                               f"1..{LEAK_SCALE - 1}/{LEAK_SCALE}: pass the dt the network was exported with")
        if abs(code / LEAK_SCALE - leak) > LEAK_ROUNDING_WARNING * leak:
            warnings.warn(f"{label}: a leak of {leak:.4g} per step (dt = {dt:g} s, tau = {tau:g} s) rounds to "
                          f"{code}/{LEAK_SCALE} = {code / LEAK_SCALE:.4g}", NirWarning, stacklevel=2)
        layers.append((weights * dt, threshold)), leaks.append(code)
    v_read_code = read_limit_code(config) if v_read_code is None else v_read_code
    check_read_code(v_read_code, config)
    if getattr(config, "neuron_pages", 1) == 1 and len(set(leaks)) > 1:
        raise CompileError(f"layers leak differently ({', '.join(f'{c}/{LEAK_SCALE}' for c in leaks)} per step at "
                           f"dt = {dt:g} s), and config {config.name!r} has one page of neuron settings for every "
                           "core (per_core_neurons off): use a config with per_core_neurons on")
    margin = 1.0 - FIRING_MARGIN if fires_at_threshold else 1.0 + FIRING_MARGIN
    # Weights and thresholds many decades apart overflow the scale search; say so rather than crash.
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            network = _fit([(w, th * margin) for w, th in layers], leaks, resets, np.asarray(level_codes), config,
                           v_read_code, dt, dt_source, fires_at_threshold)
    except (FloatingPointError, OverflowError) as error:
        raise CompileError(f"weights and thresholds span a range the chip's registers cannot express "
                           f"({error})") from None
    network = NirNetwork(network.layers, network.neurons, network.v_read_code, network.scales,
                         network.threshold_error, dt, dt_source, tuple(part.names for part in parts))
    _warn_offsets(network, config)
    return network


def _codes_and_levels(volts: float, total_us: float, step_us: float, lsb: float, natural_code: int,
                      fires_at_threshold: bool, search: bool):
    """(threshold code, levels to raise the column total by) to try, best first: at `natural_code`, or
    (`search`, for neurons that subtract their threshold) at each code down to half of it, ordered by how
    close the threshold lands to the code, on the side the firing rule needs (at or under the code for
    NIR's v > theta, at or over it for v >= theta)."""
    tries = []
    for code in range(natural_code, max(natural_code // 2, 1) - 1, -1) if search else [natural_code]:
        levels = (volts / (code * lsb) - 1) * total_us / step_us
        extra = max(int(np.floor(levels) if fires_at_threshold else np.ceil(levels - 1e-9)), 0)
        landed = volts * total_us / (total_us + extra * step_us) / (code * lsb)
        tries.append((abs(landed - 1), code, extra))
    return [(code, extra) for _, code, extra in sorted(tries)]


def _warn_offsets(network: NirNetwork, config: ChipConfig) -> None:
    offset = NeuronParams().offset_sigma_v
    for k, codes in enumerate(network.neurons):
        volts = codes.thresh_pos * config.threshold_volts_per_lsb
        if volts < OFFSET_WARNING * offset:
            warnings.warn(f"layer {k} ({network.nodes[k][1]!r}): its threshold is {volts * 1e3:.1f} mV on the "
                          f"membrane, {volts / offset:.1f} comparator offsets (sigma {offset * 1e3:g} mV): with the "
                          "neuron noise on, the offsets move its spikes; a network trained in the chip's terms "
                          "(host/training.py) or with larger thresholds relative to its weights avoids it",
                          NirWarning, stacklevel=3)


def _fit(parts, leaks: list[int], resets: list[NeuronReset], codes: np.ndarray, config: ChipConfig,
         v_read_code: int, dt: float, dt_source: str, fires_at_threshold: bool) -> NirNetwork:
    """Weight scales that put every layer's threshold exactly on a whole code: its own (each core has a
    page of neuron settings), or the lowest layer's (one page for every core)."""
    top = len(codes) - 1
    step_us = (codes[1] - codes[0]) * config.us_per_adc_lsb
    drift = NeuronParams().gain * v_read_code * config.bl_volts_per_lsb * step_us   # x (1 / S) per level
    scales = []
    for weights, _ in parts:
        peak = np.abs(weights).max()
        if peak == 0:
            raise CompileError("a layer has only zero weights")
        scales.append(peak / top)

    def mapped(k: int, scale: float) -> tuple[Layer, float]:
        """Layer k at weight `scale`, and its threshold as a membrane voltage."""
        weights, threshold = parts[k]
        layer = Layer.from_weights(np.rint(weights / scale).astype(np.int64), codes, config)
        total_us = (codes[layer.plus[:, 0]] * config.us_per_adc_lsb).sum()
        return layer, threshold * drift / (total_us * scale)

    first = [mapped(k, scale) for k, scale in enumerate(scales)]
    lsb = config.threshold_volts_per_lsb
    # Each layer's code is its threshold rounded down; one page for all cores takes the lowest layer's.
    natural_codes = [int(np.floor(volts / lsb * (1 + SCALE_TOLERANCE))) for _, volts in first]
    if getattr(config, "neuron_pages", 1) == 1:
        natural_codes = [min(natural_codes)] * len(first)
    for k, code in enumerate(natural_codes):
        if not 1 <= code <= THRESHOLD_CODE_MAX:
            raise CompileError(f"layer {k}'s threshold comes to {first[k][1] * 1e3:.4f} mV on the membrane "
                               f"(at dt = {dt:g} s, {dt_source}: a LIF's inputs are scaled by r dt / tau), outside "
                               f"the register's 1..{THRESHOLD_CODE_MAX} codes of {lsb * 1e3} mV")
    layers, natural = [], []
    one_page = getattr(config, "neuron_pages", 1) == 1
    for k, (layer, volts) in enumerate(first):
        # First keep the weights and raise the column total until the threshold falls on the code: the
        # drift per weight shrinks as 1/S, so S grows by volts / target, in whole levels (above the
        # threshold for NIR's v > theta, below for v >= theta).
        total_us = (codes[layer.plus[:, 0]] * config.us_per_adc_lsb).sum()
        subtract = resets[k] is NeuronReset.SUBTRACT
        raised = None
        for code, extra in _codes_and_levels(volts, total_us, step_us, lsb, natural_codes[k], fires_at_threshold,
                                             search=subtract and not one_page):
            try:
                raised = Layer.from_weights(np.rint(parts[k][0] / scales[k]).astype(np.int64), codes, config,
                                            extra_levels=extra)
            except CompileError:
                continue                    # no room on the balance rows: a higher code, or coarser weights
            natural_codes[k] = code
            layer, volts = raised, volts * total_us / (codes[raised.plus[:, 0]] * config.us_per_adc_lsb).sum()
            break
        target = natural_codes[k] * lsb
        # A subtracting neuron keeps its exact weights over a threshold a fraction of a level off: coarser
        # weights would put the threshold on its code but change what each spike subtracts in weight units
        # (the integers stay, their scale moves), an error every spike carries forward.
        if volts > target * (1 + SCALE_TOLERANCE) and not (subtract and raised is not None):
            # Coarser weights lower a layer's threshold voltage (its column total shrinks more slowly than
            # the scale grows): bisect the scale until it lands on the target.
            low, high = scales[k], scales[k] * volts / target * 2
            for _ in range(SCALE_ITERATIONS):
                middle = (low + high) / 2
                layer, volts = mapped(k, middle)
                low, high = (middle, high) if volts > target else (low, middle)
            scales[k] = high
            layer, volts = mapped(k, high)
        layers.append(layer)
        natural.append(volts / target)
    error = max(abs(1 - n) / n for n in natural)
    neurons = tuple(NeuronCodes(thresh_pos=code, thresh_neg=THRESHOLD_CODE_MAX, leak=leak,
                                mode=NeuronMode.LIF if leak else NeuronMode.IF, reset=reset)
                    for code, leak, reset in zip(natural_codes, leaks, resets))
    return NirNetwork(layers, neurons, v_read_code, tuple(scales), error, dt, dt_source, ())
