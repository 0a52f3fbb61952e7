"""Random work for the emulated macro, shared by its Amaranth-simulator tests and its cocotb bench: what
to do to the cells and which rows to drive, as plain data, so both run the same kind of session against
`fpga.emulation.EmulatedMacroModel`."""

from __future__ import annotations

import numpy as np

from ..protocol import Op

CELL_OPS = {"set": Op.SET, "reset": Op.RESET, "form": Op.FORM}


def random_cell_ops(rng: np.random.Generator, config, cells: list[tuple[int, int, int]], count: int) -> list:
    """`count` operations on `cells`, the first a sense: ("sense", (core, row, column)) or ("pulse", (op,
    core, row, column, wl codes, bl codes, sl codes)), SET-heavy, with widths of 1-4 cycles and codes on
    both sides of the SET and RESET thresholds."""
    # A sense first, as the P&V engine always starts: it waits for the macro's cell clearing after reset,
    # which a pulse cannot do.
    ops = [("sense", cells[0])]
    for _ in range(count - 1):
        where = cells[rng.integers(len(cells))]
        kind = rng.choice(["set", "reset", "form", "sense"], p=[0.4, 0.2, 0.1, 0.3])
        if kind == "sense":
            ops.append(("sense", where))
            continue
        width = int(rng.integers(1, 5))
        wl = rng.integers(60, 200, width).tolist()
        bl = rng.integers(40, 160, width).tolist()
        sl = rng.integers(40, 140, width).tolist()
        ops.append(("pulse", (CELL_OPS[kind], *where, wl, bl, sl)))
    return ops


def random_steps(rng: np.random.Generator, config, steps: int, rows_per_step: int) -> list[list[tuple[int, int]]]:
    """Rows (core, row) to drive in each step; each step names its last row again at once and its first
    again at the end (a row named twice in a step is driven once)."""
    out = []
    for _ in range(steps):
        step = [(int(rng.integers(config.cores)), int(rng.integers(config.rows))) for _ in range(rows_per_step)]
        out.append(step + [step[-1], step[0]])
    return out


def apply_cell_ops(model, ops) -> list[int]:
    """Run `ops` on the reference; the codes its senses return, in order."""
    answers = []
    for kind, args in ops:
        if kind == "sense":
            answers.append(model.sense(*args))
        else:
            model.pulse(*args)
    return answers


def flags_of(word: int, config) -> np.ndarray:
    """A spike-flag word of the port (bit core * NEURONS + neuron) as cores x neurons booleans."""
    bits = np.array([(word >> i) & 1 for i in range(config.cores * config.neurons)], bool)
    return bits.reshape(config.cores, config.neurons)


class CallRecorder:
    """Stands in for a macro model: forwards every call to it and keeps (name, args, answer), so a session
    the golden model drives (an MVM) can be replayed on a port, call for call."""

    def __init__(self, model):
        self.model, self.config, self.calls = model, model.config, []

    def __getattr__(self, name):
        method = getattr(self.model, name)

        def record(*args):
            answer = method(*args)
            self.calls.append((name, args, answer))
            return answer
        return record
