"""Networks from PyTorch: a `torch.nn.Sequential` of Linear, Conv2d, ReLU, AvgPool2d, MaxPool2d and Flatten on
the chip's MVM path, as `host.cnn_chip` runs the digits CNN (docs/torch.md). Spiking networks come in
through NIR instead (`host.nir_import`).

Matrix layers on cores. A Linear's weights, or a Conv2d's kernels as the columns of its im2col matrix
(each input patch ordered (dy, dx, channel), `host.cnn.im2col`), are rounded to the signed levels of a
differential pair at their own levels_per_unit (the layer's largest |w| on the top level) and put on the
next free cores with `host.cnn_chip.map_layer`: one core where the layer fits, held in as many copies as its
balancing allows; row and neuron chunks on several cores, their partials added in the host, where it
does not. A network that needs more cores than the config has is refused naming the layer. A bias is one
more row of the matrix, driven with the layer's top input code at every MVM: the chip adds it in the same
charge as the weights, at the same level resolution.

Units. Every activation between layers is an integer code times a scale (torch's units per code). The
network's input is rounded to `in_bits` magnitude bits, its largest |x| on `calibration_x` on the top code.
A layer's threshold code puts the largest output met on `calibration_x` (its 99.9th percentile for a hidden
layer, its maximum for the last, whose saturated scores would tie) on the top code of its `act_bits` or
`out_bits`, rounded up so the chosen range does not saturate; the ADC truncates towards zero. The
calibration runs the chip's own integer arithmetic (`ChipNetwork.quantized`), so each layer is scaled for
the codes it will really receive.

On the host, on the codes the host reads back anyway: ReLU (one comparison), MaxPool2d (the largest code
of each window: the outputs of different MVMs, which no neuron sees together), AvgPool2d (the sum of each
window's codes, its 1 / divisor folded into the scale, so nothing is rounded; the sum takes more input bits
on the next layer, more samples per MVM, as cnn_chip's input shift does; beyond `BITS_MAX` the sum is
shifted right), Flatten (torch's channel-major order), Dropout and Identity (nothing, at inference).

Refused, each with the layer's index and type, before anything is mapped (nothing on a chip changes): any
other module (BatchNorm2d, LeakyReLU, Sigmoid, Conv1d, a nested Sequential, a subclass of a supported one,
...); a Conv2d with dilation, groups, a non-square kernel or padding other than zeros; pools with padding,
dilation, ceil_mode or returned indices; a Flatten of other dims than all but the batch; inputs whose shape the layer does not
take (a Linear on an unflattened image, wrong channels or features, a kernel or window larger than its
input); and whatever `map_layer` and the threshold register refuse (`CompileError`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..config import ChipConfig
from ..models.mvm import BITS_MAX
from .cnn import im2col
from .cnn_chip import MappedLayer, map_layer, program_layers
from .compiler import CompileError

__all__ = ["ChipNetwork", "MatrixLayer", "compile_sequential", "SUPPORTED"]

#: What `compile_sequential` takes, by torch.nn class name.
SUPPORTED = ("Linear", "Conv2d", "ReLU", "AvgPool2d", "MaxPool2d", "Flatten", "Dropout", "Identity")
#: The part of a hidden layer's outputs on `calibration_x` that fits its codes; the rest saturates.
HIDDEN_RANGE_PERCENTILE = 99.9
#: How to get torch, as the error says when it is missing.
INSTALL_HINT = "pip install -e '.[torch]' (torch==2.13.0, the CPU build)"


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError(f"importing a PyTorch network needs torch: {INSTALL_HINT}") from None
    return torch


@dataclass(frozen=True)
class MatrixLayer:
    """A Linear or Conv2d on its cores: its level matrix (one copy), its MVMs' bits and threshold code."""
    index: int
    kind: str
    mapped: MappedLayer
    #: outputs x inputs in levels, the bias row's column last; what one copy of `mapped` holds.
    levels: np.ndarray
    threshold_code: int
    in_bits: int
    out_bits: int
    #: Incoming codes are shifted right this far to fit `in_bits` (a large pooled sum).
    in_shift: int
    #: The constant input of the bias row (the top input code), None without a bias.
    bias_code: int | None
    #: (kernel, stride (y, x), padding ((top, bottom), (left, right))) of a Conv2d, None for a Linear.
    conv: tuple | None
    #: Output LSBs per level of W x (copies included), as `threshold_code` gives it.
    lsb_per_level: float

    @property
    def cores(self) -> tuple[int, ...]:
        return self.mapped.cores

    def patches(self, a: np.ndarray) -> tuple[np.ndarray, tuple]:
        """(N, positions, inputs) integer inputs of this layer's MVMs for codes `a` ((N, H, W, C) or (N, F)),
        and the (H, W) of the output positions (() for a Linear)."""
        a = a >> self.in_shift
        if self.conv is None:
            rows, grid = a[:, None, :], ()
        else:
            kernel, stride, pads = self.conv
            padded = np.pad(a, ((0, 0), pads[0], pads[1], (0, 0)))
            n, h, w, _ = padded.shape
            # im2col's positions are those of a "same" convolution, its window starting kernel // 2 before
            # each: the valid ones, every stride-th, are this convolution's.
            lead = kernel // 2
            ys = np.arange(lead, h - kernel + lead + 1, stride[0])
            xs = np.arange(lead, w - kernel + lead + 1, stride[1])
            rows = im2col(padded, kernel).reshape(n, h, w, -1)[:, ys][:, :, xs].reshape(n, len(ys) * len(xs), -1)
            grid = (len(ys), len(xs))
        if self.bias_code is not None:
            rows = np.concatenate([rows, np.full(rows.shape[:2] + (1,), self.bias_code, dtype=rows.dtype)], axis=2)
        return rows.astype(np.int64), grid

    def ideal(self, rows: np.ndarray) -> np.ndarray:
        """What ideal cells convert for each row of inputs: each tile's share of W x in output LSBs,
        truncated and saturated on its own (`TiledMapping`), the partials added."""
        top = (1 << self.out_bits) - 1
        tiles = self.mapped.tiled.tiles
        shares = [(slice(None), slice(None))] if len(tiles) == 1 else [
            (slice(t.rows.start, t.rows.stop), slice(t.pairs.start, t.pairs.stop)) for t in tiles]
        y = np.zeros((len(rows), self.levels.shape[0]), dtype=np.int64)
        for inputs, outputs in shares:           # one tile holds every copy of a replicated layer
            z = rows[:, inputs] @ self.levels[outputs, inputs].T
            y[:, outputs] += np.clip(np.trunc(self.lsb_per_level * z), -top, top).astype(np.int64)
        return y

    def on_chip(self, chip, rows: np.ndarray, conversion: str) -> np.ndarray:
        return np.stack([self.mapped.run(chip, row, self.in_bits, self.out_bits, conversion, self.threshold_code)
                         for row in rows])

    def apply(self, a: np.ndarray, convert) -> np.ndarray:
        rows, grid = self.patches(a)
        n, positions, inputs = rows.shape
        y = convert(self, rows.reshape(n * positions, inputs))
        return y.reshape((n,) + grid + (-1,)) if grid else y.reshape(n, -1)


@dataclass(frozen=True)
class _HostStep:
    """ReLU, a pool or Flatten on the host's integer codes ((N, H, W, C) images or (N, F) vectors)."""
    index: int
    kind: str
    #: A pool's (kernel (y, x), stride (y, x)); None otherwise.
    window: tuple | None = None

    def apply(self, a: np.ndarray, convert=None) -> np.ndarray:
        if self.kind == "ReLU":
            return np.maximum(a, 0)
        if self.kind == "Flatten":
            return a.transpose(0, 3, 1, 2).reshape(len(a), -1) if a.ndim == 4 else a
        if self.kind in ("AvgPool2d", "MaxPool2d"):
            kernel, stride = self.window
            windows = np.lib.stride_tricks.sliding_window_view(a, kernel, axis=(1, 2))[:, ::stride[0], ::stride[1]]
            return windows.sum(axis=(4, 5)) if self.kind == "AvgPool2d" else windows.max(axis=(4, 5))
        return a                                                    # Dropout, Identity


@dataclass(frozen=True)
class ChipNetwork:
    """A compiled Sequential: its matrix layers on cores, the host's steps between them, the scales."""
    steps: tuple
    #: One sample's shape as torch takes it: (features,) or (channels, height, width).
    input_shape: tuple[int, ...]
    in_bits: int
    #: torch's input units per input code, and its output units per output code.
    input_scale: float
    output_scale: float
    conversion: str = "sar"

    @property
    def layers(self) -> list[MatrixLayer]:
        return [step for step in self.steps if isinstance(step, MatrixLayer)]

    @property
    def cores(self) -> tuple[int, ...]:
        return tuple(core for layer in self.layers for core in layer.cores)

    def program(self, chip, calibrate: bool = True) -> list:
        """P&V of every tile with the host's default recipes, then each core's neuron offsets calibrated."""
        return program_layers(chip, [layer.mapped for layer in self.layers], calibrate)

    def run(self, chip, x) -> np.ndarray:
        """The network's outputs (torch's units and layout) for one sample or a batch, every MVM on `chip`."""
        return self._forward(x, lambda layer, rows: layer.on_chip(chip, rows, self.conversion))

    def quantized(self, x) -> np.ndarray:
        """The same on ideal cells: the chip's integer arithmetic in numpy (what `run` gives on
        `ModelTransport(ideal=True)`)."""
        return self._forward(x, lambda layer, rows: layer.ideal(rows))

    def mvms_per_sample(self) -> int:
        """Forward MVMs per sample: one per output position of each layer and tile."""
        total, a = 0, self._codes(np.zeros((1,) + self.input_shape))
        for step in self.steps:
            if isinstance(step, MatrixLayer):
                total += step.patches(a)[0].shape[1] * len(step.mapped.tiled.tiles)
            a = step.apply(a, lambda layer, rows: np.zeros((len(rows), layer.levels.shape[0]), dtype=np.int64))
        return total

    def summary(self) -> list[dict]:
        """One row per matrix layer: its index and type, matrix (outputs x inputs, bias row included),
        cores, tiles, copies, bits and threshold code."""
        return [dict(index=layer.index, kind=layer.kind, matrix=list(layer.levels.shape),
                     bias=layer.bias_code is not None, cores=list(layer.cores), tiles=len(layer.mapped.tiled.tiles),
                     copies=layer.mapped.replicas, in_bits=layer.in_bits, out_bits=layer.out_bits,
                     threshold_code=layer.threshold_code) for layer in self.layers]

    def _codes(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        top = (1 << self.in_bits) - 1
        codes = np.clip(np.rint(x / self.input_scale), -top, top).astype(np.int64)
        return codes.transpose(0, 2, 3, 1) if codes.ndim == 4 else codes

    def _forward(self, x, convert) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        single = x.shape == self.input_shape
        if not single and x.shape[1:] != self.input_shape:
            raise CompileError(f"the network takes samples of shape {self.input_shape} (or a batch of them), "
                               f"not {x.shape}")
        a = self._codes(x[None] if single else x)
        for step in self.steps:
            a = step.apply(a, convert)
        y = (a.transpose(0, 3, 1, 2) if a.ndim == 4 else a) * self.output_scale
        return y[0] if single else y


def compile_sequential(model, input_shape, config: ChipConfig, level_codes, calibration_x, in_bits: int = 4,
                       act_bits: int = 4, out_bits: int = 6, replicate: bool = True,
                       conversion: str = "sar") -> ChipNetwork:
    """`model` (a torch.nn.Sequential, read in eval mode, not changed) for samples of `input_shape`
    ((features,) or (channels, height, width), torch's layout) on the cores of `config`, with the
    conductance levels `level_codes`. `calibration_x` (a batch of samples, numpy or torch) sets the input's
    and every layer's range (the module docstring). Hidden layers convert `act_bits`, the last `out_bits`;
    `replicate` holds a layer that fits one core in copies. Refused with a `CompileError` naming the layer
    (by index and type) before anything is mapped."""
    torch = _torch()
    if not isinstance(model, torch.nn.Sequential):
        raise CompileError(f"compile_sequential takes a torch.nn.Sequential, not {type(model).__name__}")
    for name, bits in (("in_bits", in_bits), ("act_bits", act_bits), ("out_bits", out_bits)):
        if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= BITS_MAX:
            raise CompileError(f"{name} = {bits!r}: an MVM's inputs and outputs have 1..{BITS_MAX} bits")
    shape = tuple(int(n) for n in input_shape)
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise CompileError(f"input_shape = {tuple(input_shape)}: one sample as (features,) or "
                           f"(channels, height, width)")
    x = calibration_x.detach().cpu().numpy() if isinstance(calibration_x, torch.Tensor) else calibration_x
    x = np.asarray(x, dtype=float)
    if x.ndim != len(shape) + 1 or x.shape[1:] != shape or len(x) == 0:
        raise CompileError(f"calibration_x has shape {x.shape}; a batch of samples of shape {shape} is (N, "
                           f"{', '.join(map(str, shape))})")
    largest_input = float(np.abs(x).max()) if np.all(np.isfinite(x)) else math.nan
    if not largest_input > 0:
        raise CompileError("calibration_x must be finite and not all zero: its largest |x| sets the input's range")

    modules = list(model)
    matrices = [k for k, module in enumerate(modules) if type(module).__name__ in ("Linear", "Conv2d")]
    # torch's own classes only: a subclass may compute something else in its forward().
    supported = {getattr(torch.nn, name) for name in SUPPORTED}
    for k, module in enumerate(modules):
        if type(module) not in supported:
            raise CompileError(f"{_label(k, module)} is not supported: the chip takes torch.nn's "
                               f"{', '.join(SUPPORTED)}{_HINTS.get(type(module).__name__, '')}")
    if not matrices:
        raise CompileError("the Sequential has no Linear or Conv2d: nothing for the chip's cores to compute")

    input_scale = largest_input / ((1 << in_bits) - 1)
    network = ChipNetwork((), shape, in_bits, input_scale, 1.0, conversion)
    a = network._codes(x)                                 # the calibration codes as each step receives them
    bits, scale, free, steps = in_bits, input_scale, list(range(config.cores)), []
    for k, module in enumerate(modules):
        kind = type(module).__name__
        if kind in ("Linear", "Conv2d"):
            last = k == matrices[-1]
            step, scale = _matrix_layer(k, module, shape, bits, scale, a, level_codes, config, free, replicate,
                                        out_bits if last else act_bits, 100.0 if last else HIDDEN_RANGE_PERCENTILE,
                                        _relu_next(modules, k))
            free = free[len(step.mapped.tiled.tiles):]
            bits = step.out_bits
        else:
            step, divisor = _host_step(k, module, shape)
            scale /= divisor
            if step.kind == "AvgPool2d":          # a sum of n codes of b bits needs the bits of n (2^b - 1)
                bits = (math.prod(step.window[0]) * ((1 << bits) - 1)).bit_length()
        a = step.apply(a, lambda layer, rows: layer.ideal(rows))
        shape = _shape(a)
        steps.append(step)
    return ChipNetwork(tuple(steps), tuple(int(n) for n in input_shape), in_bits, input_scale, scale, conversion)


def _matrix_layer(k: int, module, shape: tuple, bits: int, scale: float, a: np.ndarray, level_codes,
                  config: ChipConfig, free: list, replicate: bool, out_bits: int, percentile: float,
                  relu_next: bool) -> tuple[MatrixLayer, float]:
    """Layer k (Linear or Conv2d) on the next free cores, its threshold from the calibration codes `a`;
    returns the layer and its output scale (torch's units per output code)."""
    label = _label(k, module)
    weight = module.weight.detach().cpu().double().numpy()
    bias = None if module.bias is None else module.bias.detach().cpu().double().numpy()
    if type(module).__name__ == "Linear":
        if len(shape) != 1 or shape[0] != module.in_features:
            flat = " (put a Flatten before it)" if len(shape) == 3 else ""
            raise CompileError(f"{label} takes {module.in_features} features; its input has shape {shape}{flat}")
        matrix, conv = weight, None
    else:
        conv = _conv_geometry(k, module, shape)
        matrix = weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)     # (dy, dx, c): im2col's order
    shift = max(0, bits - BITS_MAX)
    in_bits, scale = bits - shift, scale * (1 << shift)
    top_in = (1 << in_bits) - 1
    # z = W (scale codes) + b = [scale W, b / top_in] [codes, top_in]: the bias row is driven at the top code.
    units = np.hstack([scale * matrix] + ([] if bias is None else [bias[:, None] / top_in]))
    largest = float(np.abs(units).max()) if np.all(np.isfinite(units)) else math.nan
    if not largest > 0:
        raise CompileError(f"{label} has weights that are all zero or not finite")
    top = len(level_codes) - 1
    levels_per_unit = top / largest
    levels = np.rint(units * levels_per_unit).astype(np.int64)
    mapped = map_layer(f"{k} ({type(module).__name__})", levels, level_codes, config, free, replicate)
    draft = MatrixLayer(k, type(module).__name__, mapped, levels, 1, in_bits, out_bits, shift,
                        None if bias is None else top_in, conv, mapped.lsb_per_unit(1))
    rows, _ = draft.patches(a)
    z = rows.reshape(-1, rows.shape[-1]) @ levels.T
    reach = float(np.percentile(np.maximum(z, 0) if relu_next else np.abs(z), percentile)) if z.size else 0.0
    try:
        code = mapped.tiled.threshold_code_for("forward", max(reach, 1.0) / ((1 << out_bits) - 1) * mapped.replicas)
    except CompileError as error:
        raise CompileError(f"{label}: {error}") from None
    gain = mapped.lsb_per_unit(code)
    layer = MatrixLayer(k, draft.kind, mapped, levels, code, in_bits, out_bits, shift, draft.bias_code, conv, gain)
    return layer, 1.0 / (levels_per_unit * gain)


def _conv_geometry(k: int, module, shape: tuple) -> tuple:
    """(kernel, stride, padding) of a Conv2d the host's im2col serves, or a refusal naming what is not."""
    label = _label(k, module)
    if module.groups != 1:
        raise CompileError(f"{label} has groups={module.groups}: only groups=1 (every input channel to every "
                           f"output) is one matrix")
    if tuple(module.dilation) != (1, 1):
        raise CompileError(f"{label} has dilation={tuple(module.dilation)}: only (1, 1) is supported")
    if module.padding_mode != "zeros":
        raise CompileError(f"{label} pads with {module.padding_mode!r}: only 'zeros' is supported")
    kh, kw = module.kernel_size
    if kh != kw:
        raise CompileError(f"{label} has a {kh}x{kw} kernel: only square kernels are supported")
    if len(shape) != 3 or shape[0] != module.in_channels:
        raise CompileError(f"{label} takes {module.in_channels} channels (channels, height, width); its input has "
                           f"shape {shape}")
    if module.padding == "valid":
        pads = ((0, 0), (0, 0))
    elif module.padding == "same":
        pads = ((((kh - 1) // 2), kh - 1 - (kh - 1) // 2),) * 2    # torch's: the odd pixel at the end
    else:
        pads = tuple((p, p) for p in module.padding)
    height, width = shape[1] + sum(pads[0]), shape[2] + sum(pads[1])
    if kh > min(height, width):
        raise CompileError(f"{label}'s {kh}x{kw} kernel does not fit its {height}x{width} input (padding "
                           f"included)")
    return kh, tuple(module.stride), pads


def _host_step(k: int, module, shape: tuple) -> tuple[_HostStep, float]:
    """A host step and what it divides the scale by (a pool's divisor, else 1)."""
    kind, label = type(module).__name__, _label(k, module)
    if kind == "Flatten":
        if (module.start_dim, module.end_dim) != (1, -1):
            raise CompileError(f"{label} flattens dims {module.start_dim}..{module.end_dim}: only start_dim=1, "
                               f"end_dim=-1 (all but the batch) is supported")
        return _HostStep(k, kind), 1.0
    if kind not in ("AvgPool2d", "MaxPool2d"):
        return _HostStep(k, kind), 1.0
    pair = lambda v: (v, v) if isinstance(v, int) else tuple(v)          # noqa: E731
    kernel, stride = pair(module.kernel_size), pair(module.stride if module.stride is not None else module.kernel_size)
    if pair(module.padding) != (0, 0) or module.ceil_mode:
        raise CompileError(f"{label} has padding={module.padding}, ceil_mode={module.ceil_mode}: only windows "
                           f"inside the input (padding 0, ceil_mode False) are supported")
    if kind == "MaxPool2d" and (pair(module.dilation) != (1, 1) or module.return_indices):
        raise CompileError(f"{label} has dilation={module.dilation}, return_indices={module.return_indices}: "
                           f"only dilation 1 without indices is supported")
    if len(shape) != 3 or kernel[0] > shape[1] or kernel[1] > shape[2]:
        raise CompileError(f"{label}'s {kernel[0]}x{kernel[1]} window does not fit its input of shape {shape} "
                           f"(channels, height, width)")
    divisor = 1.0
    if kind == "AvgPool2d":
        divisor = float(module.divisor_override or kernel[0] * kernel[1])
    return _HostStep(k, kind, (kernel, stride)), divisor


def _relu_next(modules: list, k: int) -> bool:
    """Whether layer k's outputs meet a ReLU before anything that is not monotonic per output: then their
    negative range does not matter."""
    for module in modules[k + 1:]:
        kind = type(module).__name__
        if kind == "ReLU":
            return True
        if kind not in ("Flatten", "Dropout", "Identity", "MaxPool2d"):
            return False
    return False


def _shape(a: np.ndarray) -> tuple[int, ...]:
    """One sample's shape in torch's layout, from host codes (N, H, W, C) or (N, F)."""
    return (a.shape[3], a.shape[1], a.shape[2]) if a.ndim == 4 else tuple(a.shape[1:])


def _label(k: int, module) -> str:
    """A layer as messages name it: its index in the Sequential (torch prints it so) and its type."""
    return f"layer {k} ({type(module).__name__})"


#: What to do instead, for modules a trained network often has.
_HINTS = {
    "BatchNorm2d": "; fold it into the Conv2d or Linear before it (scale its weights, shift its bias)",
    "BatchNorm1d": "; fold it into the Linear before it (scale its weights, shift its bias)",
    "Sequential": "; put the layers of a nested Sequential in the outer one",
    "LeakyReLU": "; ReLU is the nonlinearity the host applies",
}
