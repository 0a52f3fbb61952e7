"""The cocotb bridge: the Python analog macro answers the RTL's analog port pins, cycle by cycle.

Between operations the bridge sleeps until the port's operation leaves IDLE. During one it samples the
port at every falling clock edge (the middle of a cycle, where the RTL's outputs are settled): a pulse
is recorded as the DAC codes of each cycle its strobe is high, and when the strobe drops the whole pulse
is applied to `models.AnalogMacro`. A sense request is answered `sense_latency` cycles after it is first
seen, with the ADC code for one cycle, as the macro's bit line settles and its converter runs.

While the port reads INFER (the chip's inference sequencer owns the macro), the bridge follows it cycle
by cycle: each row strobe puts a row at the read voltage for the step; a neuron reset, integrate or fire
strobe is carried out on the macro's neuron banks `neuron_latency` cycles after it is first seen and
acknowledged for one cycle, a fire's spike flags set with the acknowledge and held until the next fire.

Speed matters here: every Python wake-up costs more than Verilator needs to simulate a cycle. So the
bridge waits on one reused trigger at a time (cocotb's `First` starts a task per trigger), reads pins
through the simulator's bit string (building a `LogicArray` per read costs ~10 us), and lets a timer,
not clock edges, run out a sense latency.
"""

from __future__ import annotations

from typing import Callable

import cocotb
from cocotb.triggers import FallingEdge, Timer

from ..models.macro import AnalogMacro, NeuronCodes, flags_word
from ..protocol import Op

__all__ = ["AnalogBridge"]


def _reader(handle) -> Callable[[], int]:
    """A fast integer read of a pin (X or Z bits read as 0)."""
    raw = getattr(handle, "_handle", None)
    if raw is not None and hasattr(raw, "get_signal_val_binstr"):
        def read() -> int:
            try:
                return int(raw.get_signal_val_binstr(), 2)
            except ValueError:                       # X or Z somewhere
                return 0
        return read

    def read_public() -> int:                        # a cocotb without the GPI string accessor
        value = handle.value
        return int(value) if value.is_resolvable else 0
    return read_public


class AnalogBridge:
    def __init__(self, dut, macro: AnalogMacro, prefix: str = "port__", sense_latency: int = 4,
                 neuron_latency: int = 2):
        self.dut = dut
        self.clock_period_ps = 2 * round(1e12 / macro.config.sys_clk_hz / 2)
        self.macro = macro
        self.sense_latency = sense_latency
        self.neuron_latency = neuron_latency
        names = ["op", "core", "row", "column", "wl_code", "bl_code", "sl_code", "pulse", "sense_req"]
        # The inference members, where the DUT has them (the whole chip; the drivers alone do not).
        self.has_neurons = hasattr(dut, f"{prefix}row_strobe")
        if self.has_neurons:
            names += ["row_strobe", "row_core", "row_index", "v_read_code", "neuron_reset", "integrate", "fire",
                      "thresh_pos", "thresh_neg", "leak", "refractory", "neuron_mode"]
            self._neuron_ack = getattr(dut, f"{prefix}neuron_ack")
            self._spike_pos = getattr(dut, f"{prefix}spike_pos")
            self._spike_neg = getattr(dut, f"{prefix}spike_neg")
            for pin in (self._neuron_ack, self._spike_pos, self._spike_neg):
                pin.value = 0
        self._handle = {name: getattr(dut, f"{prefix}{name}") for name in names}
        self._read = {name: _reader(handle) for name, handle in self._handle.items()}
        self._sense_valid = getattr(dut, f"{prefix}sense_valid")
        self._sense_code = getattr(dut, f"{prefix}sense_code")
        self._sense_valid.value = 0
        self._sense_code.value = 0
        #: Every pulse applied, as (op, core, row, column, wl codes, bl codes, sl codes).
        self.pulse_log: list[tuple] = []
        self.sense_log: list[tuple] = []
        #: Every neuron action, as (name, detail): row events, integrate, fire (with its spikes), reset.
        self.neuron_log: list[tuple] = []

    def start(self):
        return cocotb.start_soon(self._run())

    async def _run(self):
        read = self._read
        op_changed = self._handle["op"].value_change
        mid_cycle = FallingEdge(self.dut.clk)
        while True:
            if read["op"]() == Op.IDLE:
                await op_changed
                continue
            if read["op"]() == Op.INFER:
                await self._infer(mid_cycle)
                continue
            await mid_cycle                            # selection settling (setup cycles), then act
            if read["pulse"]():
                await self._pulse(mid_cycle)
            elif read["sense_req"]():
                await self._sense()

    async def _pulse(self, mid_cycle):
        """Record the pulse's codes cycle by cycle until its strobe drops, then apply it."""
        read = self._read
        where = (read["op"](), read["core"](), read["row"](), read["column"]())
        wl, bl, sl = [], [], []
        while read["pulse"]():
            wl.append(read["wl_code"]())
            bl.append(read["bl_code"]())
            sl.append(read["sl_code"]())
            await mid_cycle
        samples = (*where, wl, bl, sl)
        self.pulse_log.append(samples)
        self.macro.pulse(*samples)

    async def _sense(self):
        """Answer `sense_latency` cycles after the request with the ADC code, for one cycle."""
        read = self._read
        # A timer from one falling edge lands on another, where the RTL's registered outputs are stable.
        await Timer(self.sense_latency * self.clock_period_ps, unit="ps")
        where = (read["core"](), read["row"](), read["column"]())
        code = self.macro.sense(*where, read["bl_code"]())
        self.sense_log.append((*where, code))
        self._sense_code.value = code
        self._sense_valid.value = 1
        await Timer(self.clock_period_ps, unit="ps")
        self._sense_valid.value = 0

    def _codes(self) -> NeuronCodes:
        read = self._read
        return NeuronCodes(thresh_pos=read["thresh_pos"](), thresh_neg=read["thresh_neg"](), leak=read["leak"](),
                           refractory=read["refractory"](), mode=read["neuron_mode"]())

    async def _infer(self, mid_cycle):
        """Follow the inference sequencer cycle by cycle while it owns the macro."""
        read, macro = self._read, self.macro
        waited, acknowledging = 0, False
        while read["op"]() == Op.INFER:
            await mid_cycle
            if read["row_strobe"]():
                where = (read["row_core"](), read["row_index"]())
                macro.drive_row(*where)
                self.neuron_log.append(("row", where))
            if acknowledging:                          # the strobe drops at the next rising edge
                self._neuron_ack.value = 0
                acknowledging = False
                continue
            action = next((name for name in ("neuron_reset", "integrate", "fire") if read[name]()), None)
            if action is None:
                continue
            waited += 1
            if waited < self.neuron_latency:
                continue
            waited = 0
            codes = self._codes()
            if action == "neuron_reset":
                macro.reset_neurons()
                self.neuron_log.append(("reset", None))
            elif action == "integrate":
                macro.integrate(read["v_read_code"](), codes)
                self.neuron_log.append(("integrate", None))
            else:
                positive, negative = macro.fire(codes)
                self._spike_pos.value = flags_word(positive)
                self._spike_neg.value = flags_word(negative)
                self.neuron_log.append(("fire", positive.astype(int) - negative.astype(int)))
            self._neuron_ack.value = 1
            acknowledging = True
