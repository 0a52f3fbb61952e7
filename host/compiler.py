"""Network compiler: layers onto cores, conductance targets, neuron thresholds and the routing table.

`compile_network` takes layers of conductance levels, as `host.training` trains them (every cell of a
core, free rows included), or of signed integer weights, which `compile_layer` first balances (below),
and places the layers on consecutive cores: each layer's inputs on rows 0.., its neurons on column pairs
(2n, 2n+1), the cells no layer uses at the lowest level. A layer with more neurons than a core has is
split by columns over as many cores as it needs (neuron n on core first + n // neurons), each holding
all of its rows: an input reaches it on every one of them (the host sends a network input to each core of
the first layer; a routing entry's `copies` fans a spike out to the cores of the next), as NeuRRAM
segments a layer's outputs over cores. A hidden neuron's positive spike is routed to row n of the next
layer's cores (its negative spikes go nowhere: a ReLU), the last layer's spikes of both signs to the
host. Whatever does not fit (cores, rows, levels, threshold or read-voltage codes) is refused with the
limit. Rows are not split: a layer has at most a core's rows (the MVM path's `host.tiling` splits both).

Balancing integer weights (`compile_layer`): one layer of signed integer weights onto one core's
differential column pairs, for voltage-mode neurons.

A voltage-mode neuron sees V_read · (Σ_driven G+ / ΣG+ − Σ_driven G− / ΣG−): each column settles to the
conductance-weighted average of its rows (NeuRRAM's sensing). Only when a pair's two column totals are
equal is the input proportional to Σ_driven (G+ − G−), i.e. to the weights; and only when every pair
has the same total do all neurons share one gain, so one threshold serves the layer. The compiler
reaches both with balance rows, rows no input ever drives: their cells cancel each pair's weight sum and
raise every pair to the same total. What cannot be balanced is refused with the limit it hit.

Weight w in -(L-1)..(L-1) maps to the level pair (max(w, 0), max(-w, 0)) of an L-level table of evenly
spaced conductance targets (ADC codes), level 0 being the lowest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import READ_DISTURB_LIMIT_V, ChipConfig, read_limit_code
from ..models.macro import LEAK_SCALE, NeuronCodes
from ..models.neurons import NeuronMode, NeuronReset
from ..protocol import ROUTE_ENTRY_BYTES, decode_event, pack_route, route_offset, routing_table_bytes

__all__ = ["CompileError", "LayerMapping", "compile_layer", "Layer", "NetworkMapping", "compile_network",
           "neuron_codes", "neuron_reset"]

#: The neuron threshold registers are 16 bits wide.
THRESHOLD_CODE_MAX = 0xFFFF


class CompileError(ValueError):
    """The network does not fit the chip; the message names the limit."""


@dataclass(frozen=True)
class LayerMapping:
    core: int
    #: ADC-code targets for every cell of the core (rows x columns), ready for `Programmer.program`.
    targets: np.ndarray
    #: Level index of every cell (rows x columns), for per-level recipes.
    levels: np.ndarray
    #: Row of each input, then the balance rows (never driven).
    input_rows: tuple[int, ...]
    balance_rows: tuple[int, ...]
    #: Every pair's column total, in levels above the lowest (the same for all pairs).
    column_total: int


def compile_layer(weights, level_codes, config: ChipConfig, core: int = 0,
                  balance_rows: int | None = None, extra_levels: int = 0) -> LayerMapping:
    """Map `weights` (inputs x neurons, integers within ±(len(level_codes) - 1)) onto `core`.

    Inputs take rows 0.., neurons the column pairs (2n, 2n+1); the rows left over (or the last
    `balance_rows` of them) balance the columns, and raise every column by `extra_levels` more: a larger
    column total, a smaller drift per weight, with the weights unchanged (how an importer puts a layer's
    threshold on a whole register code).
    """
    weights = np.asarray(weights)
    codes = np.asarray(level_codes)
    top = len(codes) - 1
    if not 0 <= core < config.cores:
        raise CompileError(f"core {core} does not exist: the chip has {config.cores} cores")
    if weights.ndim != 2 or not np.issubdtype(weights.dtype, np.integer):
        raise CompileError("weights must be a 2-D integer array (inputs x neurons) of level differences")
    if codes.ndim != 1 or top < 1 or np.any(np.diff(codes) <= 0):
        raise CompileError("level_codes must list at least two increasing ADC codes")
    if np.any(np.diff(codes) != codes[1] - codes[0]):
        raise CompileError("level_codes must be evenly spaced: balancing counts levels, so a level must "
                           "add the same conductance everywhere")
    inputs, neurons = weights.shape
    if neurons > config.neurons or 2 * neurons > config.columns:
        raise CompileError(f"{neurons} neurons: a core has {config.neurons} (two columns each)")
    spare = config.rows - inputs
    if spare < 1:
        raise CompileError(f"{inputs} inputs leave no balance row: a core has {config.rows} rows")
    if np.abs(weights).max(initial=0) > top:
        raise CompileError(f"weights reach {np.abs(weights).max()}; {len(codes)} levels allow ±{top}")
    balance = spare if balance_rows is None else balance_rows
    if not 1 <= balance <= spare:
        raise CompileError(f"balance_rows must be 1..{spare}")

    positive, negative = np.maximum(weights, 0), np.maximum(-weights, 0)
    # Each pair's imbalance, and the common total every column must reach (in levels above level 0).
    imbalance = positive.sum(axis=0) - negative.sum(axis=0)
    capacity = balance * top
    worst = int(np.abs(imbalance).max(initial=0))
    if worst > capacity:
        neuron = int(np.abs(imbalance).argmax())
        raise CompileError(f"neuron {neuron}'s weights sum to {int(imbalance[neuron])} levels; {balance} balance "
                           f"rows of {top} levels offset at most {capacity}: regularize the column sums or "
                           "free more rows")
    # After cancelling the imbalance on the lighter side, raise both sides by the same amount.
    heavier = np.maximum(positive.sum(axis=0), negative.sum(axis=0))
    if isinstance(extra_levels, bool) or not isinstance(extra_levels, (int, np.integer)) or extra_levels < 0:
        raise CompileError(f"extra_levels = {extra_levels!r}: a number of levels, 0 or more")
    total = int(heavier.max(initial=0)) + int(extra_levels)
    add_positive = total - positive.sum(axis=0)
    add_negative = total - negative.sum(axis=0)
    if max(add_positive.max(initial=0), add_negative.max(initial=0)) > capacity:
        raise CompileError(f"the balance rows cannot raise every column to {total} levels (capacity "
                           f"{capacity}): free more rows or lower the largest column sum")

    levels = np.zeros((config.rows, config.columns), dtype=np.int64)
    levels[:inputs, 0:2 * neurons:2] = positive
    levels[:inputs, 1:2 * neurons:2] = negative
    rows = list(range(config.rows - balance, config.rows))
    for column_levels, side in ((add_positive, 0), (add_negative, 1)):
        for neuron, amount in enumerate(column_levels):
            # Spread `amount` levels over the balance rows, `top` at most per cell.
            fill = np.minimum(np.maximum(amount - top * np.arange(balance), 0), top)
            levels[rows, 2 * neuron + side] = fill
    return LayerMapping(core=core, targets=codes[levels], levels=levels, input_rows=tuple(range(inputs)),
                        balance_rows=tuple(rows), column_total=total)


def check_read_code(v_read_code: int, config: ChipConfig) -> None:
    """Inference rows are read at most at the chip's read-disturb limit (it refuses a start above it)."""
    limit = read_limit_code(config)
    if not 1 <= v_read_code <= limit:
        raise CompileError(f"read code {v_read_code} is outside 1..{limit} ({READ_DISTURB_LIMIT_V} V read-disturb limit)")


@dataclass(frozen=True)
class Layer:
    """One layer as conductance levels: (rows, neurons) level indices of the + and - column of each
    neuron; rows 0..inputs-1 are driven by the layer's inputs, the others only set the column totals."""
    plus: np.ndarray
    minus: np.ndarray
    inputs: int

    @classmethod
    def from_weights(cls, weights, level_codes, config: ChipConfig, extra_levels: int = 0) -> "Layer":
        """Signed integer weights (inputs x neurons), balanced by `compile_layer` on spare rows (every
        column raised by `extra_levels`)."""
        weights = np.asarray(weights)
        if weights.ndim != 2 or weights.shape[1] <= config.neurons:
            mapping = compile_layer(weights, level_codes, config, extra_levels=extra_levels)
            neurons = weights.shape[1]
            return cls(mapping.levels[:, 0:2 * neurons:2], mapping.levels[:, 1:2 * neurons:2],
                       len(mapping.input_rows))
        # More neurons than a core has: each core's share balanced to the whole layer's column total, so
        # every neuron of the layer has the one gain its threshold was chosen for.
        chunks = [weights[:, start:start + config.neurons] for start in range(0, weights.shape[1], config.neurons)]
        heaviest = [int(np.maximum(np.maximum(c, 0).sum(axis=0), np.maximum(-c, 0).sum(axis=0)).max(initial=0))
                    for c in chunks]
        parts = [cls.from_weights(c, level_codes, config, extra_levels + max(heaviest) - h)
                 for c, h in zip(chunks, heaviest)]
        return cls(np.hstack([p.plus for p in parts]), np.hstack([p.minus for p in parts]), parts[0].inputs)

    @property
    def neurons(self) -> int:
        return self.plus.shape[1]


@dataclass(frozen=True)
class NetworkMapping:
    config: ChipConfig
    #: ADC-code targets of every cell of each core the network uses (core k holds layer k).
    targets: list[np.ndarray]
    levels: list[np.ndarray]
    level_codes: tuple[int, ...]
    routing: bytes
    #: One NeuronCodes for every core, or a tuple of one per core where the layers' settings differ.
    codes: NeuronCodes | tuple[NeuronCodes, ...]
    v_read_code: int
    #: Row of each network input (on each of `input_cores`, the first layer's), and (core, neuron) of each
    #: output.
    input_rows: tuple[int, ...]
    outputs: tuple[tuple[int, int], ...]
    #: Steps a hidden spike needs to reach the last layer: appended to every run with no input.
    flush_steps: int
    input_cores: tuple[int, ...] = (0,)
    #: The cores of each layer, in order (more than one where a layer's neurons are split).
    layer_cores: tuple[tuple[int, ...], ...] = ()

    def host_steps(self, spikes: np.ndarray) -> list[list[tuple[int, int]]]:
        """The input events of one inference from a (steps, inputs) boolean spike raster, flush steps
        appended."""
        spikes = np.asarray(spikes, dtype=bool)
        if spikes.ndim != 2 or spikes.shape[1] != len(self.input_rows):
            raise CompileError(f"input raster has shape {spikes.shape}; the network takes (steps, "
                               f"{len(self.input_rows)})")
        rows = np.asarray(self.input_rows)
        steps = [[(core, int(row)) for core in self.input_cores for row in rows[step]] for step in spikes]
        return steps + [[] for _ in range(self.flush_steps)]

    def scores(self, events) -> np.ndarray:
        """Each output's signed spike count (positive minus negative spikes) from the host's events."""
        index = {where: n for n, where in enumerate(self.outputs)}
        scores = np.zeros(len(self.outputs), dtype=np.int64)
        for word in events:
            tick, negative, core, neuron = decode_event(word)
            if not tick and (core, neuron) in index:
                scores[index[core, neuron]] += -1 if negative else 1
        return scores


def _per_layer(value, layers: int, what: str) -> list:
    """A setting given once for every layer, or as a sequence of one per layer."""
    if isinstance(value, (list, tuple, np.ndarray)):
        if len(value) != layers:
            raise CompileError(f"{what}: {len(value)} values for {layers} layers (give one, or one per layer)")
        return list(value)
    return [value] * layers


#: The reset of an IF or LIF neuron by name, as the compiler and the NIR importer take it.
RESETS = {"zero": NeuronReset.ZERO, "subtract": NeuronReset.SUBTRACT}


def neuron_reset(value, what: str = "reset", otherwise: str = "") -> NeuronReset:
    """`value` ("zero", "subtract" or a NeuronReset) as a NeuronReset; anything else refused, the message
    naming `what` was given and `otherwise` what else would do."""
    if isinstance(value, NeuronReset):
        return value
    if isinstance(value, str) and value in RESETS:
        return RESETS[value]
    raise CompileError(f"{what} = {value!r}: an IF or LIF neuron resets to 'zero' or by 'subtract'ing its "
                       f"threshold (protocol.NeuronReset.ZERO / SUBTRACT){otherwise}")


def neuron_codes(layers: int, config: ChipConfig, threshold_code, mode=NeuronMode.ADC,
                 negative_threshold_code=None, leak_code=0, reset=NeuronReset.ZERO):
    """The neuron settings of a network of `layers` layers: one NeuronCodes if every layer's agree, else a
    tuple of one per core (core k holds layer k; cores past the last layer take its settings). Each
    setting is given once or once per layer. A config with one page of neuron settings for every core
    (`per_core_neurons` off) refuses layers that differ."""
    thresholds = _per_layer(threshold_code, layers, "threshold_code")
    negatives = (thresholds if negative_threshold_code is None
                 else _per_layer(negative_threshold_code, layers, "negative_threshold_code"))
    modes = [NeuronMode(m) for m in _per_layer(mode, layers, "mode")]
    leaks = _per_layer(leak_code, layers, "leak_code")
    resets = [neuron_reset(r, f"layer {k}'s reset" if layers > 1 else "reset")
              for k, r in enumerate(_per_layer(reset, layers, "reset"))]
    per_layer = []
    for k, (threshold, negative, layer_mode, leak, layer_reset) in enumerate(zip(thresholds, negatives, modes,
                                                                                  leaks, resets)):
        where = f"layer {k}: " if layers > 1 else ""
        if not 0 <= leak < LEAK_SCALE or (leak and layer_mode is not NeuronMode.LIF):
            raise CompileError(f"{where}leak code {leak}: a leak is 1..{LEAK_SCALE - 1} (/{LEAK_SCALE}) and only "
                               "in LIF mode")
        if not 1 <= negative <= THRESHOLD_CODE_MAX:
            raise CompileError(f"{where}negative threshold code {negative} is outside 1..{THRESHOLD_CODE_MAX}")
        if not 1 <= threshold <= THRESHOLD_CODE_MAX:
            raise CompileError(f"{where}threshold code {threshold} is outside 1..{THRESHOLD_CODE_MAX}")
        per_layer.append(NeuronCodes(thresh_pos=int(threshold), thresh_neg=int(negative), leak=int(leak),
                                     mode=layer_mode, reset=layer_reset))
    if all(codes == per_layer[0] for codes in per_layer):
        return per_layer[0]
    if getattr(config, "neuron_pages", 1) == 1:         # configs before per-core pages had one
        differ = [f"layer {k}: threshold {c.thresh_pos}, leak {c.leak}/{LEAK_SCALE}, {c.mode.name}, reset "
                  f"{c.reset.name.lower()}" for k, c in enumerate(per_layer)]
        raise CompileError(f"the layers' neuron settings differ ({'; '.join(differ)}), and config "
                           f"{config.name!r} has one page of neuron settings for every core (per_core_neurons "
                           "off): give every layer the same threshold, leak, mode and reset, or use a config with "
                           "per_core_neurons on")
    return tuple(per_layer + [per_layer[-1]] * (config.cores - layers))


def compile_network(layers: list[Layer], level_codes, config: ChipConfig, threshold_code, v_read_code: int,
                    mode=NeuronMode.ADC, negative_threshold_code=None, leak_code=0,
                    reset=NeuronReset.ZERO) -> NetworkMapping:
    """Place `layers` on cores 0.. (see the module docstring); neurons run in `mode` (ADC: reset by
    subtracting the threshold; IF and LIF: `reset`, "zero" or "subtract") with the threshold
    `threshold_code` (and `negative_threshold_code`, the same by default), LIF's `leak_code` (1/256 per
    step), and rows read at `v_read_code`. Each neuron setting is one value for every layer or a sequence
    of one per layer (each core has its own page of neuron settings: `neuron_codes`)."""
    codes = np.asarray(level_codes)
    if not layers:
        raise CompileError("a network needs at least one layer")
    # Cores per layer (the shape checks below name a malformed layer; here it counts as one core).
    spans = [max(1, -(-np.asarray(layer.plus).shape[-1] // config.neurons)) if np.ndim(layer.plus) == 2 else 1
             for layer in layers]
    if sum(spans) > config.cores:
        raise CompileError(f"the layers take {sum(spans)} cores ({' + '.join(map(str, spans))}; a core holds "
                           f"{config.neurons} neurons): the chip has {config.cores}")
    fanned = [k for k in range(1, len(layers)) if spans[k] > 1]
    if fanned and not config.route_fanout:
        raise CompileError(f"layer {fanned[0]} is split over {spans[fanned[0]]} cores and config {config.name!r} "
                           "routes a spike to one core (route_fanout off): only a first layer may be split, its "
                           "inputs sent by the host to each of its cores")
    first = np.concatenate([[0], np.cumsum(spans)]).astype(int)
    layer_cores = tuple(tuple(range(first[k], first[k + 1])) for k in range(len(layers)))
    settings = neuron_codes(len(layers), config, threshold_code, mode, negative_threshold_code, leak_code, reset)
    if isinstance(settings, tuple):                     # one page per layer: each of its cores takes it
        per_core = [settings[k] for k, cores in enumerate(layer_cores) for _ in cores]
        settings = tuple(per_core + [per_core[-1]] * (config.cores - len(per_core)))
    if codes.ndim != 1 or len(codes) < 2 or np.any(np.diff(codes) <= 0):
        raise CompileError("level_codes must list at least two increasing ADC codes")
    if len(codes) > config.pv_levels:
        raise CompileError(f"{len(codes)} levels: the P&V level table holds {config.pv_levels}")
    if codes[0] < 1 or codes[-1] > (1 << config.adc_bits) - 1:
        raise CompileError(f"level codes must be ADC codes 1..{(1 << config.adc_bits) - 1} (a column needs "
                           "conductance to settle)")
    check_read_code(v_read_code, config)
    targets, all_levels = [], []
    for k, layer in enumerate(layers):
        plus, minus = np.asarray(layer.plus), np.asarray(layer.minus)
        name = f"layer {k}"
        if plus.shape != minus.shape or plus.ndim != 2:
            raise CompileError(f"{name}: plus {plus.shape} and minus {minus.shape} must be equal 2-D arrays")
        if not (np.issubdtype(plus.dtype, np.integer) and np.issubdtype(minus.dtype, np.integer)):
            raise CompileError(f"{name}: levels must be integers (quantize the network first)")
        rows, neurons = plus.shape
        if rows > config.rows:
            raise CompileError(f"{name} has {rows} rows: a core has {config.rows}")
        if not 1 <= layer.inputs <= rows:
            raise CompileError(f"{name} has {layer.inputs} inputs on {rows} rows")
        if k and layer.inputs != layers[k - 1].neurons:
            raise CompileError(f"{name} takes {layer.inputs} inputs but layer {k - 1} has {layers[k - 1].neurons} neurons")
        low, high = min(plus.min(), minus.min()), max(plus.max(), minus.max())
        if low < 0 or high >= len(codes):
            raise CompileError(f"{name} uses levels {low}..{high}; the table has 0..{len(codes) - 1}")
        for share, start in enumerate(range(0, neurons, config.neurons)):
            part = slice(start, start + config.neurons)
            width = len(range(neurons)[part])
            levels = np.zeros((config.rows, config.columns), dtype=np.int64)
            levels[:rows, 0:2 * width:2] = plus[:, part]
            levels[:rows, 1:2 * width:2] = minus[:, part]
            all_levels.append(levels)
            targets.append(codes[levels])

    def place(k: int, neuron: int) -> tuple[int, int]:
        """(core, neuron on that core) of a layer's neuron."""
        return layer_cores[k][0] + neuron // config.neurons, neuron % config.neurons

    routes = [pack_route(False)] * (routing_table_bytes(config) // ROUTE_ENTRY_BYTES)
    for k, layer in enumerate(layers):
        for neuron in range(layer.neurons):
            at = route_offset(config.neurons, *place(k, neuron), 0) // ROUTE_ENTRY_BYTES
            if k + 1 < len(layers):                     # positive spike: its row on the next layer's cores
                following = layer_cores[k + 1]
                routes[at] = pack_route(False, True, following[0], neuron, copies=len(following) - 1)
            else:
                routes[at] = routes[at + 1] = pack_route(True)             # both signs to the host
    routing = b"".join(routes)
    assert len(routing) == routing_table_bytes(config)
    last = len(layers) - 1
    return NetworkMapping(config=config, targets=targets, levels=all_levels,
                          level_codes=tuple(int(c) for c in codes), routing=routing,
                          codes=settings,
                          v_read_code=v_read_code, input_rows=tuple(range(layers[0].inputs)),
                          outputs=tuple(place(last, n) for n in range(layers[-1].neurons)), flush_steps=last,
                          input_cores=layer_cores[0], layer_cores=layer_cores)
