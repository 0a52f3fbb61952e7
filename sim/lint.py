"""`verilator --lint-only -Wall` on the generated Verilog, with the committed waivers (rtl/verilator.vlt)."""

from __future__ import annotations

import pathlib
import subprocess
import tempfile
from dataclasses import dataclass

from .. import rtl
from ..blocks import to_verilog
from ..config import REFERENCE, ChipConfig
from .toolchain import missing_simulator_message

__all__ = ["WAIVERS", "LintResult", "lint"]

#: The waivers belong to the RTL they excuse, so they stay beside it.
WAIVERS = pathlib.Path(rtl.__file__).with_name("verilator.vlt")


@dataclass(frozen=True)
class LintResult:
    block: str
    command: list[str]
    returncode: int
    messages: list[str]

    @property
    def clean(self) -> bool:
        return self.returncode == 0 and not self.messages


def lint(block: str = "chip", config: ChipConfig = REFERENCE) -> LintResult:
    problem = missing_simulator_message("verilator")
    if problem:
        raise RuntimeError(problem)
    with tempfile.TemporaryDirectory() as scratch:
        top = f"rram_cim_{block}"
        source = pathlib.Path(scratch, f"{top}.v")
        source.write_text(to_verilog(block, config))
        command = ["verilator", "--lint-only", "-Wall", str(WAIVERS), str(source), "--top-module", top]
        done = subprocess.run(command, capture_output=True, text=True)
    messages = [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("%")]
    return LintResult(block, command, done.returncode, messages)
