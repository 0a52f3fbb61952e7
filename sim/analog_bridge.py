"""The cocotb bridge: the Python analog macro answers the RTL's analog port pins, cycle by cycle.

While a pulse or a sense is under way it samples the port at every falling clock edge (when the port
is settled) and records the DAC codes of the pulse; when the pulse strobe drops it applies the whole pulse to `models.AnalogMacro`.
A sense request is answered `sense_latency` cycles later with the ADC code, as the macro's bit line
settles and its converter runs.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import FallingEdge, First, RisingEdge

from ..models.macro import AnalogMacro

__all__ = ["AnalogBridge"]


class AnalogBridge:
    def __init__(self, dut, macro: AnalogMacro, prefix: str = "port__", sense_latency: int = 4):
        self.dut = dut
        self.macro = macro
        self.sense_latency = sense_latency
        self._pin = {name: getattr(dut, f"{prefix}{name}") for name in (
            "op", "core", "row", "column", "wl_code", "bl_code", "sl_code", "pulse", "sense_req",
            "sense_valid", "sense_code")}
        self._pin["sense_valid"].value = 0
        self._pin["sense_code"].value = 0
        #: Every pulse applied, as (op, core, row, column, wl codes, bl codes, sl codes).
        self.pulse_log: list[tuple] = []
        self.sense_log: list[tuple] = []

    def start(self):
        return cocotb.start_soon(self._run())

    def _read(self, name: str) -> int:
        return int(self._pin[name].value) if self._pin[name].value.is_resolvable else 0

    async def _run(self):
        samples = None            # (op, core, row, column, [wl], [bl], [sl]) of the pulse in progress
        countdown = None
        while True:
            # Between operations there is nothing to do: sleep until a pulse or a sense begins, rather
            # than waking Python every cycle (that would dominate a Verilator co-simulation).
            if samples is None and countdown is None and not (self._read("pulse") or self._read("sense_req")):
                await First(RisingEdge(self._pin["pulse"]), RisingEdge(self._pin["sense_req"]))
            await FallingEdge(self.dut.clk)
            if self._read("pulse"):
                where = tuple(self._read(name) for name in ("op", "core", "row", "column"))
                if samples is None:
                    samples = (*where, [], [], [])
                assert where == samples[:4], f"selection changed during a pulse: {samples[:4]} -> {where}"
                for index, name in enumerate(("wl_code", "bl_code", "sl_code"), start=4):
                    samples[index].append(self._read(name))
            elif samples is not None:
                self.pulse_log.append(samples)
                self.macro.pulse(*samples)
                samples = None

            self._pin["sense_valid"].value = 0
            if self._read("sense_req"):
                if countdown is None:
                    countdown = self.sense_latency
                elif countdown > 0:
                    countdown -= 1
                    if countdown == 0:
                        where = (self._read("core"), self._read("row"), self._read("column"))
                        code = self.macro.sense(*where, self._read("bl_code"))
                        self.sense_log.append((*where, code))
                        self._pin["sense_code"].value = code
                        self._pin["sense_valid"].value = 1
            else:
                countdown = None
