"""Verilog out of an Amaranth elaboratable, plain enough for any simulator.

Which blocks there are, by name, is `rram_cim.blocks`: it names FPGA blocks too, which rtl/ must not import.
"""

from __future__ import annotations

import re

from amaranth.back import verilog
from amaranth.hdl import Elaboratable

__all__ = ["convert", "settle_at_time_zero"]


#: Yosys's time-zero trigger: a register declared `= 0` that its `always @*` blocks read.
_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\S*)\s*= 0;$", re.M)
_MODULE = re.compile(r"^module .*?^endmodule", re.M | re.S)
#: `always @*` with one plain assignment and no trigger: Yosys writes these for a signal that is a
#: register's copy (a bit slice of an output, say).
_BARE_BLOCK = re.compile(r"^(\s*)always @\*\n(\s*)([^\n;]*=[^\n;]*;)$", re.M)
_SETTLE = "\\$rram_cim_settle"


def settle_at_time_zero(text: str) -> str:
    """Make every `always @*` block of Yosys's Verilog run once at time zero, in any simulator.

    A combinational block runs only when something it reads changes. Yosys gives most blocks a
    trigger to read, a register declared `reg t = 0;`, counting on the declaration to be an event at
    time zero. It is in Verilog-2005, but in SystemVerilog (Icarus -g2012, cocotb's default) a
    declaration's value is set before any process starts, without an event: the blocks never run,
    and an output that depends only on registers still at their reset value (`sense_req` of an idle
    driver) stays X through reset and after. So do the blocks Yosys writes without a trigger
    (`always @* x[9:4] = row;`), which wait for their register's first change: a P&V run on row 0
    would address row X.

    So each trigger starts undefined and an `initial` block without delay sets it: an X-to-0 change
    at time zero. Icarus starts every `always` before any `initial` at time zero (it pushes them
    to the front of the queue), so the blocks are already waiting; Verilator settles combinational
    logic at start-up anyway and needs no --timing for a delay-free `initial` (`initial #0` would
    be an error there). Blocks without a trigger get one of their module's.
    """
    def module(match):
        body = match.group(0)
        if not _BARE_BLOCK.search(body):
            return body
        header_end = body.index(";") + 1             # after the port list
        body = body[:header_end] + f"\n  reg {_SETTLE} ;\n  initial {_SETTLE} = 1'h0;" + body[header_end:]
        return _BARE_BLOCK.sub(lambda m: f"{m.group(1)}always @* begin\n{m.group(2)}if ({_SETTLE} ) begin end\n"
                                          f"{m.group(2)}{m.group(3)}\n{m.group(1)}end", body)
    text = _MODULE.sub(module, text)
    return _TRIGGER.sub(lambda m: f"{m.group(1)}reg {m.group(2)} ;\n{m.group(1)}initial {m.group(2)} = 1'h0;", text)


def convert(elaboratable: Elaboratable, name: str) -> str:
    """Verilog text of `elaboratable`, its top module named `name`.

    Plain Verilog-2005 that simulates the same under Icarus (-g2005 and -g2012) and Verilator, with
    no fix-up by the bench (see `settle_at_time_zero`).
    """
    return settle_at_time_zero(verilog.convert(elaboratable, name=name, emit_src=False))
