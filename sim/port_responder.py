"""The analog port's responder: what a macro answers on `rtl/analog_port.py`'s port, cycle by cycle, as a
plain state machine with no simulator in it (docs/analog_port.md says what the port carries).

Once per clock cycle an adapter hands `PortResponder.step` the port's outputs as they stand in the middle
of that cycle (a mapping of member name to int: `op`, `core`, `row`, `column`, the DAC codes, `pulse`,
`sense_req`, the inference strobes and the neuron parameter codes) and drives back what it returns: those
of `sense_valid`, `sense_code`, `neuron_ack`, `spike_pos`, `spike_neg` that changed in that step (in most
cycles none, so an adapter writes nothing and keeps no copy of its own; `drives` holds them all). The
responder reads only the members it needs in that cycle, so an adapter may pass a lazy mapping that reads
a pin when asked.

What it does is what the cocotb bridge has always done (the golden trace holds every cycle of it):

* It acts only while the port's operation is not IDLE; the operation of the previous cycle decides how a
  cycle is read (so the cycle in which a request ends is still read as part of it).
* A pulse is recorded as the DAC codes of each cycle its strobe is high and applied to the macro, whole,
  in the first cycle the strobe is low.
* A sense request is answered `sense_latency` cycles after it is first seen, with the code of the cell
  addressed in that cycle, `sense_valid` high for one cycle; the cycles in between are not read, and the
  cycle after the answer is read only for its operation.
* A cycle whose operation reads TRIM writes one neuron's comparator trim (`trim_index`, `trim_code`).
* While the operation reads INFER, each row strobe drives a row for the step; a neuron reset, integrate
  or fire is carried out on the macro in the `neuron_latency`-th cycle it is seen and acknowledged for
  one cycle; a fire's spike flags are set with its acknowledge and held until the next fire.

`silent` makes the macro stop answering (requests are seen but never answered: what the watchdog is
for). Adapters: `sim/analog_bridge.py` (cocotb, on pins) and `sim/amaranth_responder.py` (Amaranth's
simulator).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from ..models.macro import NeuronCodes, codes_per_core, flags_word
from ..protocol import Op, unpack_neuron_cores

__all__ = ["PortResponder", "CELL_MEMBERS", "NEURON_MEMBERS", "DRIVEN_MEMBERS", "STROBE_MEMBERS"]

#: The port's outputs a programming or sense request uses.
CELL_MEMBERS = ("op", "core", "row", "column", "wl_code", "bl_code", "sl_code", "pulse", "sense_req")
#: The port's outputs the inference sequencer uses (a port of the drivers alone has none of them).
NEURON_MEMBERS = ("row_strobe", "row_core", "row_index", "v_read_code", "neuron_reset", "integrate", "fire",
                  "neuron_cores", "mvm", "direction", "line_negative", "phase", "convert", "convert_shift",
                  "trim_index", "trim_code")
#: The port's inputs the responder drives.
DRIVEN_MEMBERS = ("sense_valid", "sense_code", "neuron_ack", "spike_pos", "spike_neg")

_STROBES = ("neuron_reset", "integrate", "fire", "convert")
#: The members whose change ends a wait between strobes (`PortResponder.between_strobes`).
STROBE_MEMBERS = ("op", "row_strobe") + _STROBES


class PortResponder:
    """Answers one analog port with `macro` (an object with `models.macro.AnalogMacro`'s `pulse`, `sense`,
    `drive_row`, `integrate`, `fire` and `reset_neurons`), keeping the logs tests compare."""

    def __init__(self, macro, sense_latency: int = 4, neuron_latency: int = 2, silent: bool = False):
        if sense_latency < 1 or neuron_latency < 1:
            raise ValueError(f"latencies are counted in cycles from the request and must be at least 1, "
                             f"not sense {sense_latency} / neuron {neuron_latency}")
        self.macro = macro
        self.sense_latency = sense_latency
        self.neuron_latency = neuron_latency
        #: While true, requests are seen but never answered.
        self.silent = silent
        #: What the responder drives, as it stands after the last step.
        self.drives = dict.fromkeys(DRIVEN_MEMBERS, 0)
        self._changed: dict[str, int] = {}  # the drives the current step changed
        #: Every pulse applied, as (op, core, row, column, wl codes, bl codes, sl codes).
        self.pulse_log: list[tuple] = []
        #: Every sense answered, as (core, row, column, code).
        self.sense_log: list[tuple] = []
        #: Every neuron action, as (name, detail): row events, integrate, fire (with its spikes), reset.
        self.neuron_log: list[tuple] = []
        self._previous_op = Op.IDLE
        self._pulse = None                 # (where, wl, bl, sl) of the pulse being recorded
        self._sense_countdown = 0          # cycles to the sense's next event, 0 outside a sense
        self._sense_answered = False
        self._neuron_waited = 0
        self._acknowledging = False
        self._quiet = False                # the last INFER cycle had no strobe high and nothing to answer

    # ---- what an adapter needs to know to sleep --------------------------------------------------------
    @property
    def asleep(self) -> bool:
        """Nothing in flight and the operation was IDLE: nothing happens until the operation changes."""
        return self._previous_op == Op.IDLE and self._pulse is None and not self._sense_countdown

    @property
    def between_strobes(self) -> bool:
        """The operation reads INFER but the last cycle had no strobe high and nothing to answer: nothing
        happens until a strobe (`STROBE_MEMBERS`) or the operation changes, so an adapter may sleep until
        one of them moves instead of stepping every cycle of a sequencer that waits for its host."""
        return self._previous_op == Op.INFER and self._quiet

    @property
    def counting(self) -> int:
        """Inside a sense: the cycles until the next one the responder reads (those between are ignored,
        so an adapter may sleep through them and pass their number to `step`); 0 outside a sense."""
        return self._sense_countdown

    # ---- one cycle -------------------------------------------------------------------------------------
    def step(self, port: Mapping[str, int], cycles: int = 1) -> dict:
        """Take the port's outputs of one cycle (`cycles` after the previous step); return the drives it
        changed, by name (empty if none did: the adapter's per-cycle cost is then one check)."""
        if self._sense_countdown:
            self._sense_countdown -= cycles
            if self._sense_countdown <= 0:
                self._sense_step(port)
        elif self._pulse is not None:
            self._pulse_step(port)
        else:
            op = self._previous_op if self._previous_op != Op.IDLE else port["op"]
            if op == Op.INFER:
                self._infer_step(port)
                self._previous_op = port["op"]
                if self._previous_op != Op.INFER:          # the sequencer let go: its handshake ends here
                    self._neuron_waited, self._acknowledging = 0, False
            elif op == Op.TRIM:
                self._trim_step(port)
            elif op != Op.IDLE:
                self._request_step(port)
            else:
                self._previous_op = Op.IDLE
        changed, self._changed = self._changed, {}
        return changed

    def _drive(self, name: str, value: int) -> None:
        if self.drives[name] != value:
            self.drives[name] = self._changed[name] = value

    def _trim_step(self, port):
        """A trim write lasts the one cycle `op` reads TRIM; the cycle after it is read for its operation."""
        if port["op"] == Op.TRIM:
            neurons = self.macro.config.neurons
            core, neuron = divmod(port["trim_index"], neurons)
            code = port["trim_code"] - 256 if port["trim_code"] >= 128 else port["trim_code"]
            self.macro.set_trim(core, neuron, code)
            self.neuron_log.append(("trim", (core, neuron, code)))
        self._previous_op = port["op"]

    def _request_step(self, port):
        if port["pulse"]:
            self._pulse = ((port["op"], port["core"], port["row"], port["column"]), [], [], [])
            self._pulse_step(port)
        elif port["sense_req"]:
            self._sense_countdown, self._sense_answered = self.sense_latency, False
        else:
            self._previous_op = port["op"]

    def _pulse_step(self, port):
        where, wl, bl, sl = self._pulse
        if port["pulse"]:
            wl.append(port["wl_code"])
            bl.append(port["bl_code"])
            sl.append(port["sl_code"])
            return
        samples = (*where, wl, bl, sl)
        self.pulse_log.append(samples)
        self.macro.pulse(*samples)
        self._pulse = None
        self._previous_op = port["op"]

    def _sense_step(self, port):
        if self._sense_answered:                        # the cycle after the answer: drop it
            self._drive("sense_valid", 0)
            self._sense_countdown = 0
            self._previous_op = port["op"]
            return
        self._sense_answered, self._sense_countdown = True, 1
        if self.silent:
            return
        where = (port["core"], port["row"], port["column"])
        code = self.macro.sense(*where, port["bl_code"])
        self.sense_log.append((*where, code))
        self._drive("sense_code", code)
        self._drive("sense_valid", 1)

    def _infer_step(self, port):
        macro = self.macro
        self._quiet = False
        if port["row_strobe"] and port["mvm"]:              # an MVM input line, signed
            where = (port["row_core"], port["row_index"])
            macro.drive_line(where[0], port["direction"], where[1], bool(port["line_negative"]))
            self.neuron_log.append(("line", (*where, -1 if port["line_negative"] else 1)))
        elif port["row_strobe"]:
            where = (port["row_core"], port["row_index"])
            macro.drive_row(*where)
            self.neuron_log.append(("row", where))
        if self._acknowledging:                         # the strobe drops at the next clock edge
            self._drive("neuron_ack", 0)
            self._acknowledging = False
            return
        action = next((name for name in _STROBES if port[name]), None)
        if action is None:
            self._quiet = not port["row_strobe"]
            return
        self._neuron_waited += 1
        if self._neuron_waited < self.neuron_latency:
            return
        self._neuron_waited = 0
        if self.silent:
            return
        # One NeuronCodes per page of neuron settings the port carries (the macro's config says how many).
        pages = unpack_neuron_cores(port["neuron_cores"], macro.config.neuron_pages)
        codes = [NeuronCodes(**page) for page in pages]
        core = port["row_core"]
        if action == "neuron_reset":
            macro.reset_neurons()
            self.neuron_log.append(("reset", None))
        elif action == "integrate" and port["mvm"]:
            macro.integrate_lines(core, port["direction"], port["v_read_code"],
                                  codes_per_core(codes, macro.config.cores)[core], port["phase"])
            self.neuron_log.append(("integrate", core))
        elif action == "convert":
            up, down = macro.convert_step(core, port["convert_shift"], codes_per_core(codes, macro.config.cores)[core])
            for name, decided in (("spike_pos", up), ("spike_neg", down)):     # only this core's neurons
                flags = np.zeros((macro.config.cores, macro.config.neurons), dtype=bool)
                flags[core] = decided
                self._drive(name, flags_word(flags))
            self.neuron_log.append(("convert", up.astype(int) - down.astype(int)))
        elif action == "integrate":
            macro.integrate(port["v_read_code"], codes)
            self.neuron_log.append(("integrate", None))
        else:
            positive, negative = macro.fire(codes)
            self._drive("spike_pos", flags_word(positive))
            self._drive("spike_neg", flags_word(negative))
            self.neuron_log.append(("fire", positive.astype(int) - negative.astype(int)))
        self._drive("neuron_ack", 1)
        self._acknowledging = True
