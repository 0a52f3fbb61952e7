"""A small convolutional network for scikit-learn's 8x8 digits, trained in numpy for the chip's MVM path.

The network (`CNNSettings`): conv 3x3 (1 -> 12 channels, zero padding, stride 1), ReLU, 2x2 max pool,
conv 3x3 (12 -> 24), ReLU, 2x2 max pool, dense (2 * 2 * 24 -> 10). No biases: `map_matrix` holds a
matrix, not an offset, and the digits do not need one. Each convolution is unrolled (im2col): its
kernels are the columns of a matrix on the cores (the level matrix A of `host.matrix_mapping`), its image
patches are the inputs of one forward MVM each, as NeuRRAM runs its CNNs (Wan et al., "A
compute-in-memory chip based on resistive random-access memory", Nature 608, 504-512, 2022: convolutions
unrolled onto the array, partial sums of layers larger than a core added digitally).

Units. Every activation is counted in output LSBs of the neurons' ADC: pixels 0..16 become 4-bit codes
0..15, a hidden layer's output is clip(z, 0, 2^act_bits - 1) (float) or the ADC's truncated code
clip(floor(z), 0, 2^act_bits - 1) (quantized and on chip), which is also the next layer's bit-serial
input. So the float network and the chip compute the same function up to rounding: the scale of a layer
is its weights' (float) or its threshold code's (chip, `host.cnn_chip`).

Training (`train`): Adam on the cross-entropy, float first, then quantization- and noise-aware, as
NeuRRAM trains (and `host.training` trains the spiking MLP): weights rounded to the signed levels of a
differential pair (+-7 with 8 conductance levels) and activations floored to their ADC codes in the
forward pass, with straight-through gradients; each forward pass draws every cell's conductance error
from the device model's spread after P&V and a day of relaxation (`device_spread_us`), and every hidden
output's error from the neurons' kT/C noise at that layer's threshold. Deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

__all__ = ["CNNSettings", "CNN", "im2col", "conv2d_direct", "max_pool", "pixel_codes", "shifted", "train",
           "PIXEL_BITS"]

#: Pixels of scikit-learn's digits count 0..16; 4 bits (0..15) hold them to within one part in 16.
PIXEL_BITS = 4


@dataclass(frozen=True)
class CNNSettings:
    image: int = 8                         # side of the square input image, pixels
    channels: tuple[int, ...] = (12, 24)   # output channels of each convolution
    kernel: int = 3                        # side of every kernel
    pool: int = 2                          # max-pool window (and stride) after each convolution
    classes: int = 10
    act_bits: int = 4                      # ADC bits of every hidden output (so the next layer's input bits)
    input_shift: int = 2                   # hidden outputs enter the next MVM times 2^shift (more samples)
    out_bits: int = 6                      # ADC bits of the last layer's outputs (the class scores)
    epochs: int = 60                       # float epochs
    aware_epochs: int = 40                 # quantization- and noise-aware epochs after them
    batch: int = 64
    learning_rate: float = 3e-3
    shift: int = 1                         # training digits moved by up to this many pixels (augmentation)
    clip_percentile: float = 99.5          # |w| at this percentile of a layer goes on the top level
    seed: int = 0

    @property
    def act_top(self) -> int:
        return (1 << self.act_bits) - 1

    def shapes(self) -> list[tuple[str, int, int, int]]:
        """(kind, positions, inputs, outputs) of each matrix layer: a convolution runs one MVM of `inputs`
        rows per output position; the dense layer one. Refuses a kernel or pool that does not fit."""
        side, channels, layers = self.image, 1, []
        if self.kernel < 1 or self.kernel > side:
            raise ValueError(f"a {self.kernel}x{self.kernel} kernel does not fit an {side}x{side} image: kernels "
                             f"are 1..{side} pixels wide")
        for k, out in enumerate(self.channels):
            if self.kernel > side:
                raise ValueError(f"convolution {k + 1}'s {self.kernel}x{self.kernel} kernel does not fit its "
                                 f"{side}x{side} input: use fewer pooling stages or a smaller kernel")
            layers.append(("conv", side * side, self.kernel * self.kernel * channels, out))
            if self.pool < 1 or side % self.pool:
                raise ValueError(f"a {self.pool}x{self.pool} pool does not tile the {side}x{side} output of "
                                 f"convolution {k + 1}: the side must be a multiple of the pool")
            side, channels = side // self.pool, out
        layers.append(("dense", 1, side * side * channels, self.classes))
        return layers


def pixel_codes(x: np.ndarray) -> np.ndarray:
    """Digits' pixels (0..1 as `host.training.load_digits` gives them, i.e. /16) as 4-bit input codes."""
    return np.clip(np.rint(np.asarray(x, dtype=float) * ((1 << PIXEL_BITS) - 1)), 0, (1 << PIXEL_BITS) - 1)


def im2col(images: np.ndarray, kernel: int) -> np.ndarray:
    """(N, H, W, C) images -> (N, H * W, kernel * kernel * C) patches of a zero-padded ("same") stride-1
    convolution, each patch ordered (dy, dx, c): the inputs of one MVM per output position."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), not {images.shape}")
    n, h, w, c = images.shape
    if not 1 <= kernel <= min(h, w):
        raise ValueError(f"a {kernel}x{kernel} kernel does not fit a {h}x{w} image")
    pad = kernel // 2
    padded = np.zeros((n, h + kernel - 1, w + kernel - 1, c), dtype=images.dtype)
    padded[:, pad:pad + h, pad:pad + w] = images
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel), axis=(1, 2))  # N,H,W,C,k,k
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n, h * w, kernel * kernel * c)


def conv2d_direct(images: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """The same "same" convolution by loops over the kernel (the reference im2col is tested against):
    kernels (C_out, k, k, C_in), images (N, H, W, C_in) -> (N, H, W, C_out)."""
    n, h, w, _ = images.shape
    out_channels, k, _, _ = kernels.shape
    pad = k // 2
    padded = np.pad(images, ((0, 0), (pad, k - 1 - pad), (pad, k - 1 - pad), (0, 0)))
    out = np.zeros((n, h, w, out_channels))
    for dy in range(k):
        for dx in range(k):
            out += padded[:, dy:dy + h, dx:dx + w, :] @ kernels[:, dy, dx, :].T
    return out


def max_pool(a: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, C) -> (pooled, mask of the maxima for the backward pass). On the host: a max across the
    outputs of different MVMs (one per position) is a comparison of integers the host already holds."""
    n, h, w, c = a.shape
    blocks = a.reshape(n, h // size, size, w // size, size, c)
    pooled = blocks.max(axis=(2, 4))
    first = (blocks == pooled[:, :, None, :, None, :])
    # one winner per window (the first), so the gradient is not counted twice on ties
    flat = first.transpose(0, 1, 3, 5, 2, 4).reshape(n, h // size, w // size, c, size * size)
    winner = np.zeros_like(flat)
    np.put_along_axis(winner, flat.argmax(axis=-1)[..., None], True, axis=-1)
    mask = winner.reshape(n, h // size, w // size, c, size, size).transpose(0, 1, 4, 2, 5, 3)
    return pooled, mask.reshape(n, h, w, c)


@dataclass
class CNN:
    """Weights of every matrix layer as (outputs, inputs) matrices (a convolution's rows are its kernels
    in im2col order), in units of output LSB per input LSB. `quantized` networks also hold each layer's
    levels_per_unit (the integer level matrix is rint(W * levels_per_unit)) and `scales`: output LSBs per
    level of W x, as the chip's threshold codes give them (`host.cnn_chip`)."""
    settings: CNNSettings
    weights: list[np.ndarray]
    levels_per_unit: list[float] | None = None
    scales: list[float] | None = None
    history: list[float] = field(default_factory=list)

    def levels(self, top: int) -> list[np.ndarray]:
        """Each layer's signed integer level matrix (|w| <= top)."""
        return [np.clip(np.rint(w * lpu), -top, top).astype(np.int64)
                for w, lpu in zip(self.weights, self.levels_per_unit)]

    def predict(self, x: np.ndarray, top: int = 7) -> np.ndarray:
        return self.scores(x, top).argmax(axis=1)

    def scores(self, x: np.ndarray, top: int = 7) -> np.ndarray:
        """Class scores of (N, 64) digits: float, or the quantized chip arithmetic with ideal cells (every
        output floored, saturated, ReLU'd and pooled as the chip and host do it)."""
        if self.scales is None:
            return _forward(self, pixel_codes(x), None, None)[0]
        return _forward(self, pixel_codes(x), None, None, quantized=self.levels(top))[0]


def _forward(net: CNN, codes, rng, noise, quantized=None):
    """Forward pass over pixel codes (N, 64): (scores, cache). `quantized`: the level matrices, with
    `noise` = (sigma_levels(levels, layer) -> sigma, [hidden output sigma in LSB per layer]) drawn from `rng`."""
    s = net.settings
    a = codes.reshape(len(codes), s.image, s.image, 1).astype(float)
    cache = []
    count = len(net.weights)
    for k in range(count):
        last = k == count - 1
        if last:
            patches = a.reshape(len(a), 1, -1)
        else:
            patches = im2col(a, s.kernel)
        n, positions, width = patches.shape
        flat = patches.reshape(n * positions, width)
        if quantized is None:
            used, gain = net.weights[k], 1.0
        else:
            used, gain = quantized[k].astype(float), net.scales[k]
            if noise is not None:
                used = used + noise[0](quantized[k], k) * rng.standard_normal(used.shape)
        z = gain * (flat @ used.T)
        if last:
            scores = z if quantized is None else z / (net.scales[k] * net.levels_per_unit[k])
            if quantized is not None and rng is None:       # the ADC's codes: truncated, saturated
                scores = np.sign(z) * np.minimum(np.floor(np.abs(z)), (1 << s.out_bits) - 1)
            cache.append((flat, used, gain, None, None, a.shape))
            return scores, cache
        if quantized is not None:
            if noise is not None:
                z = z + noise[1][k] * rng.standard_normal(z.shape)
            active = (z > 0) & (z < s.act_top + 1)
            out = np.clip(np.floor(z), 0, s.act_top)
        else:
            active = (z > 0) & (z < s.act_top)
            out = np.clip(z, 0, s.act_top)
        side = int(round(np.sqrt(positions)))
        out = out.reshape(n, side, side, -1)
        pooled, mask = max_pool(out, s.pool)
        cache.append((flat, used, gain, active.reshape(out.shape), mask, a.shape))
        a = pooled
    raise AssertionError("unreachable")


def _backward(net: CNN, cache, d_scores, quantized: bool) -> list[np.ndarray]:
    """Gradients of every weight matrix (straight-through for the rounding of weights and outputs)."""
    s = net.settings
    grads = [None] * len(net.weights)
    d = d_scores
    for k in reversed(range(len(net.weights))):
        flat, used, gain, active, mask, in_shape = cache[k]
        if k == len(net.weights) - 1:
            d_z = d if not quantized else d / (net.scales[k] * net.levels_per_unit[k])
            d_z = d_z.reshape(len(flat), -1)
        else:
            d_out = np.repeat(np.repeat(d, s.pool, axis=1), s.pool, axis=2) * mask
            d_z = (d_out * active).reshape(len(flat), -1)
        d_used = gain * (d_z.T @ flat)
        grads[k] = d_used * (net.levels_per_unit[k] if quantized else 1.0)
        if k == 0:
            break
        d_flat = gain * (d_z @ used)
        n = in_shape[0]
        if k == len(net.weights) - 1:
            d = d_flat.reshape(in_shape)
        else:
            d = _col2im(d_flat.reshape(n, -1, d_flat.shape[1]), in_shape, s.kernel)
    return grads


def shifted(codes: np.ndarray, s: CNNSettings, rng: np.random.Generator) -> np.ndarray:
    """Each digit moved by a random whole number of pixels within +-`s.shift` in x and y, zeros shifted in:
    the digits' 1,437 training images are few for a network of ~6,000 weights."""
    if s.shift == 0:
        return codes
    n = len(codes)
    images = codes.reshape(n, s.image, s.image)
    padded = np.pad(images, ((0, 0), (s.shift, s.shift), (s.shift, s.shift)))
    dy, dx = rng.integers(0, 2 * s.shift + 1, (2, n))
    rows = dy[:, None] + np.arange(s.image)[None, :]
    cols = dx[:, None] + np.arange(s.image)[None, :]
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]].reshape(n, -1)


def _col2im(d_patches: np.ndarray, shape, kernel: int) -> np.ndarray:
    """The adjoint of `im2col`: patch gradients summed back onto the (N, H, W, C) image."""
    n, h, w, c = shape
    pad = kernel // 2
    d = d_patches.reshape(n, h, w, kernel, kernel, c)
    padded = np.zeros((n, h + kernel - 1, w + kernel - 1, c))
    for dy in range(kernel):
        for dx in range(kernel):
            padded[:, dy:dy + h, dx:dx + w, :] += d[:, :, :, dy, dx, :]
    return padded[:, pad:pad + h, pad:pad + w]


def _loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    z = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
    p[np.arange(len(y)), y] -= 1
    return float(loss), p / len(y)


def initial(settings: CNNSettings, rng: np.random.Generator) -> CNN:
    """He-initialised weights scaled by 0.3: inputs of 0..15 LSB would put most outputs past the clip at
    the top code (no gradient there) from the start; at 0.3 most start inside it."""
    return CNN(settings, [0.3 * rng.normal(0, np.sqrt(2 / inputs), (outputs, inputs))
                          for _, _, inputs, outputs in settings.shapes()])


def train(data, settings: CNNSettings = CNNSettings(), plan: Callable[[CNN], CNN] | None = None,
          spread_us=None, level_step_us: float = 15.0, output_sigma: Callable[[CNN], list[float]] | None = None,
          replicas: Callable[[], list[int]] | None = None,
          progress: Callable[[str, int, int, float], None] | None = None) -> tuple[CNN, CNN]:
    """(float, quantized) networks trained on `data` (`host.training.Digits`). `plan(net)` returns the
    network with levels_per_unit and scales set (what the chip would run: `host.cnn_chip.plan`); without
    it only the float network is trained and returned twice. `spread_us` (per level, `device_spread_us`)
    and `level_step_us` turn into each weight's noise in levels; `output_sigma(net)` gives each hidden
    layer's output noise in LSB, `replicas()` how many copies of each layer the cores hold. Both noises
    are drawn only in the aware epochs."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):      # small matrices: threads only contend
        return _train(data, settings, plan, spread_us, level_step_us, output_sigma, replicas, progress)


def _train(data, settings, plan, spread_us, level_step_us, output_sigma, replicas, progress):
    rng = np.random.default_rng(settings.seed)
    net = initial(settings, rng)
    x, y = pixel_codes(data.train_x), np.asarray(data.train_y)
    _fit(net, x, y, settings.epochs, rng, None, None, progress and (lambda *a: progress("float", *a)))
    floating = CNN(settings, [w.copy() for w in net.weights], history=list(net.history))
    if plan is None:
        return floating, floating
    net = plan(net)
    noise = None
    if spread_us is not None or output_sigma is not None:
        spread = np.asarray(spread_us if spread_us is not None else np.zeros(8), dtype=float)

        def sigma_levels(levels, layer):
            # a weight w is the pair (max(w, 0), max(-w, 0)) of levels; both cells' errors add, and a
            # layer held in r copies on its core (`host.cnn_chip`) averages r of them
            copies = replicas()[layer] if replicas else 1
            return (np.hypot(spread[np.maximum(levels, 0)], spread[np.maximum(-levels, 0)])
                    / (level_step_us * np.sqrt(copies)))
        noise = (sigma_levels, output_sigma(net) if output_sigma else [0.0] * len(net.weights))
    for epoch in range(settings.aware_epochs):
        _fit(net, x, y, 1, rng, noise, epoch, progress and (lambda e, _, loss: progress(
            "quantization-aware", epoch + 1, settings.aware_epochs, loss)))
        net = plan(net)                     # threshold codes follow the weights' column totals
        if noise is not None and output_sigma is not None:
            noise = (noise[0], output_sigma(net))
    return floating, net


def _fit(net: CNN, x, y, epochs: int, rng, noise, aware_epoch, progress) -> None:
    s = net.settings
    aware = aware_epoch is not None
    total = s.aware_epochs if aware else epochs
    moments = getattr(net, "_moments", None) if aware else None
    if moments is None:
        moments = [(np.zeros_like(w), np.zeros_like(w)) for w in net.weights]
        net._moments, net._t = moments, 0
    top = 7
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        index = aware_epoch if aware else epoch
        lr = (s.learning_rate * (0.3 if aware else 1.0)) * (0.1 ** (index / max(total, 1)))
        for start in range(0, len(order), s.batch):
            pick = order[start:start + s.batch]
            levels = net.levels(top) if aware else None
            scores, cache = _forward(net, shifted(x[pick], s, rng), rng, noise, quantized=levels)
            loss, d_scores = _loss(scores, y[pick])
            grads = _backward(net, cache, d_scores, aware)
            losses.append(loss)
            net._t += 1
            for w, g, (m, v) in zip(net.weights, grads, moments):
                m *= 0.9
                m += 0.1 * g
                v *= 0.999
                v += 0.001 * g * g
                w -= lr * (m / (1 - 0.9 ** net._t)) / (np.sqrt(v / (1 - 0.999 ** net._t)) + 1e-8)
            if aware:                        # keep every weight within the levels a pair can hold
                for w, lpu in zip(net.weights, net.levels_per_unit):
                    np.clip(w, -top / lpu, top / lpu, out=w)
        net.history.append(float(np.mean(losses)))
        if progress:
            progress(epoch + 1, epochs, net.history[-1])


def with_plan(net: CNN, levels_per_unit, scales) -> CNN:
    """A copy of `net` carrying its levels_per_unit and scales (the optimizer's state goes with it)."""
    out = replace(net, weights=net.weights, levels_per_unit=list(levels_per_unit), scales=list(scales))
    for name in ("_moments", "_t"):
        if hasattr(net, name):
            setattr(out, name, getattr(net, name))
    return out
