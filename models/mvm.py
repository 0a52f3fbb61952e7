"""Matrix-vector multiplication on one core, in either direction, with multi-bit signed inputs and outputs:
the golden model of NeuRRAM-style MVM (Wan et al., Nature 608, 2022) on this chip's array and neurons.

Topology (docs/mvm.md). A core's `neurons` neurons are shared by both directions, as NeuRRAM's are:

* **forward** drives the rows (inputs x, one per row) and neuron k senses its differential column pair
  (2k, 2k+1), as spiking inference does: outputs are W^T-shaped, one per column pair;
* **backward** drives the columns (input y_k puts +y_k on column 2k and -y_k on column 2k+1) and the
  neurons sense the rows: W . y, one output per row. With fewer neurons than rows, the rows are sensed in
  phases of `neurons` rows (phase p: neuron k senses row p * neurons + k), each phase one full MVM.

What a neuron sees is voltage-mode averaging (`models.neurons.column_voltages`): a sensed line settles to
the conductance-weighted mean of the voltages driven across it, so the forward weight of cell (i, 2k) is
G[i, 2k] / T[2k] (T: the column's total over every row, driven or not) and the backward weight of the
same cell is G[i, 2k] / R[i] (R: the row's total over every column). The two directions hold the same
matrix, transposed, only where those totals are uniform: `effective_weights` gives each direction's.

Inputs: `in_bits` magnitude bits and a sign, |x| <= 2^in_bits - 1, sent as sign-magnitude ternary
frames, most significant bit first: frame b drives +V_read where x > 0 and bit b of |x| is set, -V_read
where x < 0 and it is set, 0 V elsewhere, and the neurons take 2^b samples of it (binary weighting by
repeated sampling, NeuRRAM's pulse multiplier). One bit is a ternary input.

Outputs: `out_bits` magnitude bits and a sign. After the last frame each neuron converts its membrane
with the comparators and reset by subtraction, in one of two ways (`protocol.Conversion`):

* COUNT (NeuRRAM's partial reset): up to 2^out_bits - 1 steps; each step a neuron at or above its
  positive threshold counts +1 and loses the threshold, one at or below minus its negative threshold
  counts -1 and gains it back;
* SAR: out_bits steps, most significant first; step b compares against 2^b thresholds and subtracts
  them on a decision (NeuRRAM's SAR mode halves the reset each bit).

Without noise both give sign(Q) * min(floor(|Q| / threshold), 2^out_bits - 1) of the integrated charge Q;
with comparator offsets and kT/C noise on (`NeuronParams.noise`), each decision sees them, as on the chip.

Decide mode (`StochasticLines`): each output y_i then becomes a stochastic binary neuron's 0 or 1,
`models.stochastic.decide` of y_i, line i's bias and K + 1 steps of line i's LFSR, as the chip's
sequencer writes it after its conversion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import ChipConfig, read_limit_code
from ..protocol import Conversion, Direction
from .device import ModelInputError
from .macro import AnalogMacro, NeuronCodes, codes_per_core
from .neurons import conversion_weights
from .stochastic import StochasticLines

__all__ = ["Direction", "Conversion", "MVMResult", "MVMModel", "BITS_MAX", "effective_weights", "input_frames",
           "outputs", "phases", "ideal_outputs"]

#: Input and output magnitude bits: 1 (ternary) to 8.
BITS_MAX = 8


def outputs(config: ChipConfig, direction: Direction) -> int:
    """Outputs of one MVM: a neuron per column pair forward, a row each backward."""
    return config.neurons if direction is Direction.FORWARD else config.rows


def inputs(config: ChipConfig, direction: Direction) -> int:
    """Inputs of one MVM: a row each forward, a column pair each backward."""
    return config.rows if direction is Direction.FORWARD else config.neurons


def phases(config: ChipConfig, direction: Direction) -> int:
    """Sensing phases of one MVM: backward senses `neurons` rows at a time."""
    return -(-outputs(config, direction) // config.neurons)


def effective_weights(g_us: np.ndarray, direction: Direction, neurons: int) -> np.ndarray:
    """(inputs x outputs) M such that a frame driving the inputs at V * s gives neuron inputs V * (s @ M):
    forward G[i, 2k] / T[2k] - G[i, 2k+1] / T[2k+1]; backward (G[i, 2k] - G[i, 2k+1]) / R[i], transposed
    to (column pairs x rows)."""
    g = np.asarray(g_us, dtype=float)
    direction = Direction(direction)
    if g.ndim != 2 or g.shape[1] < 2 * neurons:
        raise ModelInputError(f"a {g.shape} conductance array has no {neurons} differential column pairs")
    if direction is Direction.FORWARD:
        totals = g.sum(axis=0)
        if np.any(totals[:2 * neurons] <= 0):
            raise ModelInputError("a sensed column with no conductance has no settled voltage")
        share = g[:, :2 * neurons] / totals[:2 * neurons]
        return share[:, 0::2] - share[:, 1::2]
    totals = g.sum(axis=1)
    if np.any(totals <= 0):
        raise ModelInputError("a sensed row with no conductance has no settled voltage")
    return ((g[:, 0:2 * neurons:2] - g[:, 1:2 * neurons:2]) / totals[:, None]).T


def input_frames(x: np.ndarray, in_bits: int) -> list[tuple[int, np.ndarray]]:
    """The ternary frames of signed inputs, most significant bit first: [(samples, signs in {-1, 0, 1})]."""
    magnitude, sign = np.abs(x), np.sign(x)
    return [(1 << bit, (sign * ((magnitude >> bit) & 1)).astype(np.int8)) for bit in reversed(range(in_bits))]


def _check_bits(name: str, bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= BITS_MAX:
        raise ModelInputError(f"{name} must be an integer from 1 to {BITS_MAX}, not {bits!r}")
    return int(bits)


def check_request(config: ChipConfig, core, x, direction, in_bits, out_bits, conversion):
    """Typed, range-checked (core, x, direction, in_bits, out_bits, conversion), or ModelInputError."""
    if isinstance(core, bool) or not isinstance(core, (int, np.integer)) or not 0 <= core < config.cores:
        raise ModelInputError(f"core must be 0 to {config.cores - 1}, not {core!r}")
    try:
        direction = Direction[direction.upper()] if isinstance(direction, str) else Direction(direction)
        conversion = Conversion[conversion.upper()] if isinstance(conversion, str) else Conversion(conversion)
    except (KeyError, ValueError, AttributeError):
        raise ModelInputError(f"direction must be 'forward' or 'backward' and conversion 'count' or 'sar', "
                              f"not {direction!r} and {conversion!r}") from None
    in_bits, out_bits = _check_bits("in_bits", in_bits), _check_bits("out_bits", out_bits)
    x = np.asarray(x)
    if x.dtype.kind not in "iu" or x.shape != (inputs(config, direction),):
        raise ModelInputError(f"a {direction.name.lower()} MVM takes {inputs(config, direction)} integer inputs, "
                              f"not an array of {x.shape} {x.dtype}")
    top = (1 << in_bits) - 1
    if np.any(np.abs(x.astype(np.int64)) > top):
        raise ModelInputError(f"{in_bits}-bit inputs lie within +-{top}; got {int(np.abs(x).max())}")
    return int(core), x.astype(np.int64), direction, in_bits, out_bits, conversion


@dataclass
class MVMResult:
    outputs: np.ndarray          # signed integer outputs, one per column pair (forward) or row (backward)
    samples: int                 # neuron samples taken (integration strobes), all phases
    conversion_steps: int        # comparator decisions per neuron, all phases


class MVMModel:
    """MVMs on an `AnalogMacro`'s cells and neuron banks, through the macro's own frame and conversion
    methods (what a port answers), with each core's thresholds (`NeuronCodes`) as the output LSB."""

    def __init__(self, macro: AnalogMacro, codes, v_read_code: int):
        config = macro.config
        if not 0 < v_read_code <= read_limit_code(config):
            raise ModelInputError(f"read code {v_read_code} must be 1 to the read-disturb limit "
                                  f"{read_limit_code(config)}")
        self.macro, self.config = macro, config
        self.codes = codes_per_core(codes, config.cores)
        self.v_read_code = v_read_code

    def run(self, core: int, x, direction="forward", in_bits: int = 1, out_bits: int = 1,
            conversion="count", decide: StochasticLines | None = None) -> MVMResult:
        """One MVM; with `decide`, its outputs as the lines' stochastic neurons decide them (whose LFSR
        states it steps in place)."""
        config, macro = self.config, self.macro
        core, x, direction, in_bits, out_bits, conversion = check_request(
            config, core, x, direction, in_bits, out_bits, conversion)
        codes = self.codes[core]
        result = np.zeros(outputs(config, direction), dtype=np.int64)
        samples = steps = 0
        # The port's sequence, strobe for strobe (rtl/mvm.py sends the same): per phase a neuron reset; per
        # frame and sample the lines of the frame, then an integration; then the conversion steps.
        for phase in range(phases(config, direction)):
            macro.reset_neurons()
            for repeats, signs in input_frames(x, in_bits):
                for _ in range(repeats):
                    for line in np.flatnonzero(signs):
                        macro.drive_line(core, direction, int(line), bool(signs[line] < 0))
                    macro.integrate_lines(core, direction, self.v_read_code, codes, phase)
                    samples += 1
            counts = np.zeros(config.neurons, dtype=np.int64)
            for weight in conversion_weights(out_bits, conversion is Conversion.SAR):
                up, down = macro.convert_step(core, weight.bit_length() - 1, codes)
                counts += weight * (up.astype(np.int64) - down.astype(np.int64))
                steps += 1
            rows = slice(phase * config.neurons, min((phase + 1) * config.neurons, len(result)))
            result[rows] = counts[:rows.stop - rows.start]
        if decide is not None:
            result = decide.decide(result)
        return MVMResult(result, samples, steps)


def ideal_outputs(g_us: np.ndarray, x, direction, config: ChipConfig, codes: NeuronCodes, v_read_code: int,
                  out_bits: int, gain: float) -> np.ndarray:
    """What a noise-free neuron converts: sign(Q) * min(floor(|Q| / threshold), 2^out_bits - 1), with Q the
    charge of every frame's samples, gain * V_read * (x @ M); the threshold of Q's sign."""
    direction = Direction[direction.upper()] if isinstance(direction, str) else Direction(direction)
    weights = effective_weights(g_us, direction, config.neurons)
    charge = gain * v_read_code * config.bl_volts_per_lsb * (np.asarray(x, dtype=float) @ weights)
    threshold = np.where(charge >= 0, codes.thresh_pos, codes.thresh_neg) * config.threshold_volts_per_lsb
    counts = np.minimum(np.floor(np.abs(charge) / threshold), (1 << out_bits) - 1)
    return (np.sign(charge) * counts).astype(np.int64)
