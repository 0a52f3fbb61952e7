"""The cocotb bridge: `sim.port_responder.PortResponder` (the Python analog macro's answers) on the RTL's
analog port pins.

The responder says what to answer; this adapter only decides when to wake and moves values between pins
and the responder. Between operations it sleeps until the port's operation leaves IDLE. During one it
samples the port at every falling clock edge (the middle of a cycle, where the RTL's outputs are settled)
and drives the responder's answers there, so the RTL sees them at the next rising edge. Inside a sense it
lets a timer, not clock edges, run out the cycles the responder does not read.

Speed matters here: every Python wake-up costs more than Verilator needs to simulate a cycle. So the
bridge waits on one reused trigger at a time (cocotb's `First` starts a task per trigger), reads pins
through the simulator's bit string (building a `LogicArray` per read costs ~10 us) and only those the
responder asks for, and writes only the pins whose value the responder changed.
"""

from __future__ import annotations

from typing import Callable

import cocotb
from cocotb.triggers import FallingEdge, First, Timer

from ..models.macro import AnalogMacro
from ..protocol import Op
from .clock import clock_period_ps
from .port_responder import CELL_MEMBERS, NEURON_MEMBERS, STROBE_MEMBERS, PortResponder

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


class _Pins:
    """The port's outputs as a mapping the responder reads: each read is one pin read, now."""

    __slots__ = ("_read",)

    def __init__(self, read: dict[str, Callable[[], int]]):
        self._read = read

    def __getitem__(self, name: str) -> int:
        return self._read[name]()


class AnalogBridge:
    """`macro` answering the analog port of `dut` (its pins named `prefix` + member), through a
    `PortResponder` with the given latencies."""

    def __init__(self, dut, macro: AnalogMacro, prefix: str = "port__", sense_latency: int = 4,
                 neuron_latency: int = 2):
        self.dut = dut
        self.clock_period_ps = clock_period_ps(macro.config)
        self.responder = PortResponder(macro, sense_latency, neuron_latency)
        names = list(CELL_MEMBERS)
        driven = ["sense_valid", "sense_code"]
        # The inference members, where the DUT has them (the whole chip; the drivers alone do not).
        self.has_neurons = hasattr(dut, f"{prefix}row_strobe")
        if self.has_neurons:
            names += NEURON_MEMBERS
            driven += ["neuron_ack", "spike_pos", "spike_neg"]
        self._handle = {name: getattr(dut, f"{prefix}{name}") for name in names}
        self._pins = _Pins({name: _reader(handle) for name, handle in self._handle.items()})
        self._drive = {name: getattr(dut, f"{prefix}{name}") for name in driven}
        for pin in self._drive.values():
            pin.value = 0

    @property
    def macro(self) -> AnalogMacro:
        return self.responder.macro

    @property
    def pulse_log(self) -> list[tuple]:
        """Every pulse applied, as (op, core, row, column, wl codes, bl codes, sl codes)."""
        return self.responder.pulse_log

    @property
    def sense_log(self) -> list[tuple]:
        return self.responder.sense_log

    @property
    def neuron_log(self) -> list[tuple]:
        return self.responder.neuron_log

    def start(self):
        return cocotb.start_soon(self._run())

    async def _run(self):
        responder, pins, drive = self.responder, self._pins, self._drive
        read_op = self._pins._read["op"]
        op_changed = self._handle["op"].value_change
        mid_cycle = FallingEdge(self.dut.clk)
        # A sequencer waiting for its host holds INFER for thousands of cycles with no strobe: sleep
        # through them until a strobe or the operation moves (one wake-up instead of one per cycle).
        strobe_changes = [self._handle[name].value_change for name in STROBE_MEMBERS] if self.has_neurons else []
        period = self.clock_period_ps
        while True:
            cycles = 1
            if responder.asleep:
                if read_op() == Op.IDLE:
                    await op_changed
                    continue
                await mid_cycle
            elif strobe_changes and responder.between_strobes:
                await First(*strobe_changes)
                await mid_cycle
            elif responder.counting:
                # A timer from one falling edge lands on another, where the RTL's registered outputs are stable.
                cycles = responder.counting
                await Timer(cycles * period, unit="ps")
            else:
                await mid_cycle
            for name, value in responder.step(pins, cycles).items():
                if name in drive:
                    drive[name].value = value
