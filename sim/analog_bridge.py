"""The cocotb bridge: the Python analog macro answers the RTL's analog port pins, cycle by cycle.

A pulse is recorded as the DAC codes of each of its cycles (the bridge wakes when a code steps and
when the strobe drops, and counts cycles by simulated time); when the strobe drops the whole pulse is
applied to `models.AnalogMacro`. A sense request is answered `sense_latency` cycles later with the ADC
code for one cycle, as the macro's bit line settles and its converter runs.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import Edge, FallingEdge, First, RisingEdge, Timer
from cocotb.utils import get_sim_time

from ..models.macro import AnalogMacro

__all__ = ["AnalogBridge"]


class AnalogBridge:
    def __init__(self, dut, macro: AnalogMacro, prefix: str = "port__", sense_latency: int = 4):
        self.dut = dut
        self.clock_period_ps = 2 * round(1e12 / macro.config.sys_clk_hz / 2)
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
        value = self._pin[name].value              # one handle access: each builds a LogicArray
        return int(value) if value.is_resolvable else 0

    async def _run(self):
        clk = self.dut.clk
        while True:
            # Between operations there is nothing to do: sleep until a pulse or a sense begins. During
            # one, wake only when something changes (a DAC step, the end of the pulse), not every cycle:
            # Python per cycle would dominate a Verilator co-simulation.
            if not (self._read("pulse") or self._read("sense_req")):
                await First(RisingEdge(self._pin["pulse"]), RisingEdge(self._pin["sense_req"]))
            await FallingEdge(clk)
            if self._read("pulse"):
                await self._pulse()
            elif self._read("sense_req"):
                await self._sense()

    def _codes(self) -> tuple[int, int, int]:
        return tuple(self._read(name) for name in ("wl_code", "bl_code", "sl_code"))

    async def _pulse(self):
        """Record a pulse as its code segments and their lengths in cycles, then apply it."""
        period = self.clock_period_ps
        where = tuple(self._read(name) for name in ("op", "core", "row", "column"))
        # The pulse rose at the rising edge half a period before this falling edge.
        segment_start = get_sim_time("ps") - period // 2
        codes = self._codes()
        cycles = {"wl": [], "bl": [], "sl": []}

        def close(until):
            n = round((until - segment_start) / period)
            for key, code in zip(("wl", "bl", "sl"), codes):
                cycles[key] += [code] * n

        pins = self._pin
        while True:
            await First(FallingEdge(pins["pulse"]), Edge(pins["wl_code"]), Edge(pins["bl_code"]),
                        Edge(pins["sl_code"]))
            now = get_sim_time("ps")
            if not self._read("pulse"):
                close(now)
                break
            if self._codes() != codes:
                close(now)
                segment_start, codes = now, self._codes()
        samples = (*where, cycles["wl"], cycles["bl"], cycles["sl"])
        self.pulse_log.append(samples)
        self.macro.pulse(*samples)

    async def _sense(self):
        """Answer `sense_latency` cycles after the request with the ADC code, for one cycle."""
        # One timer, not `sense_latency` clock edges: each wake costs more Python than the wait itself.
        # It starts and ends on a falling edge, where the RTL's registered outputs are stable.
        await Timer(self.sense_latency * self.clock_period_ps, unit="ps")
        where = (self._read("core"), self._read("row"), self._read("column"))
        code = self.macro.sense(*where, self._read("bl_code"))
        self.sense_log.append((*where, code))
        self._pin["sense_code"].value = code
        self._pin["sense_valid"].value = 1
        await Timer(self.clock_period_ps, unit="ps")
        self._pin["sense_valid"].value = 0
