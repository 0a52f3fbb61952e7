"""`rram-cim`: the command line of the project."""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import shutil
import sys
import tempfile

from .config import CONFIGS, REFERENCE

__all__ = ["ArgumentParser", "UsageError", "existing_file", "main", "number", "output_folder", "seed", "staged",
           "whole"]

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCH_DIR = PROJECT_ROOT / "bench"
#: Seeds go to scikit-learn's split and to cocotb, both of which take 32 bits.
SEED_LIMIT = 2 ** 32


# ---- arguments: each checked when parsed, before any work, and refused in one line ------------------------

class ArgumentParser(argparse.ArgumentParser):
    """argparse whose errors are one line, `rram-cim demo: argument --steps: ...`, exit status 2 (argparse's),
    without the usage block that would bury the reason (`--help` shows the usage)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message}\n")


class UsageError(Exception):
    """Arguments that are each valid but not together (`--port` without `--transport serial`): reported by
    `main` as the command's parser reports any argument error."""


def whole(low: int, high: int | None = None):
    """An argparse type: a whole number in [low, high)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value >= high):
            span = f"from {low} to {high - 1}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"needs a whole number {span}, not {text!r}")
        return value
    return parse


def number(low: float, why: str = ""):
    """An argparse type: a number of at least `low` (`why` says where the limit comes from)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not value >= low or value == float("inf"):
            raise argparse.ArgumentTypeError(f"needs a number of at least {low:g}{why}, not {text!r}")
        return value
    return parse


seed = whole(0, SEED_LIMIT)


def config_name(text: str) -> str:
    if text not in CONFIGS:
        raise argparse.ArgumentTypeError(f"unknown configuration {text!r}; choose one of {', '.join(CONFIGS)}")
    return text


def output_folder(text: str) -> pathlib.Path:
    """A folder that is there or can be made: nothing on its path is a file, and the first existing folder
    on it is writable."""
    path = pathlib.Path(text)
    for place in (path, *path.parents):
        if not place.exists():
            continue
        if not place.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: {place} is a file, not a folder")
        if not os.access(place, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"{text}: no permission to write in {place}")
        break
    return path


def output_file(text: str) -> str:
    """A file to write ("-": stdout) in a folder that exists."""
    if text == "-":
        return text
    path = pathlib.Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    if not path.parent.is_dir():
        what = "is a file, not a folder" if path.parent.exists() else "does not exist; create it first"
        raise argparse.ArgumentTypeError(f"{text}: the folder {path.parent} {what}")
    return text


@contextlib.contextmanager
def staged(folder: pathlib.Path, outputs: tuple[str, ...] = ()):
    """A scratch folder inside `folder` to write a run's outputs into. When the block ends well, each file
    is renamed over its namesake in `folder` (a rename within one file system is atomic) and any of
    `outputs` the run did not write is removed, so that the folder describes one run; when it raises,
    the scratch folder goes and `folder` keeps the previous run's outputs as they were."""
    folder.mkdir(parents=True, exist_ok=True)
    scratch = pathlib.Path(tempfile.mkdtemp(prefix=".partial-", dir=folder))
    try:
        yield scratch
        written = {path.name for path in scratch.iterdir()}
        for name in written:
            os.replace(scratch / name, folder / name)
        for name in set(outputs) - written:
            (folder / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def existing_file(text: str) -> str:
    if not pathlib.Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return text


def bench_names() -> list[str]:
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


def bench_name(text: str) -> str:
    """Only the benches in bench/, by name: never a path to some other script."""
    names = bench_names()
    if text not in names:
        raise argparse.ArgumentTypeError(f"no bench {text!r} in {BENCH_DIR}; choose one of "
                                         f"{', '.join(names) or 'none (not a source checkout?)'}")
    return text


def cmd_verilog(args) -> int:
    from .blocks import to_verilog
    text = to_verilog(args.block, CONFIGS[args.config])
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        # Written beside, then renamed: an interrupted run leaves the previous file whole.
        path = pathlib.Path(args.output)
        try:
            with staged(path.parent) as scratch:
                (scratch / path.name).write_text(text)
        except OSError as error:
            raise SystemExit(f"rram-cim verilog: cannot write {path}: {error.strerror or error}") from None
        print(f"wrote {args.output} ({len(text.splitlines())} lines, module rram_cim_{args.block})",
              file=sys.stderr)
    return 0


def cmd_regmap(args) -> int:
    from .rtl.regmap.generate import PROJECT_ROOT as root, generated_sources, write_generated
    if args.check:
        stale = [path for path, text in generated_sources().items()
                 if not (root / path).exists() or (root / path).read_text() != text]
        for path in stale:
            print(f"stale: {path} (run `rram-cim regmap`)")
        return 1 if stale else 0
    for path in write_generated():
        print(f"wrote {path}")
    return 0


def cmd_lint(args) -> int:
    from .sim.lint import lint
    result = lint(args.block, CONFIGS[args.config])
    for message in result.messages:
        print(message)
    print(f"verilator --lint-only -Wall on rram_cim_{args.block} ({args.config}): "
          f"{'clean' if result.clean else f'{len(result.messages)} messages'} (waivers: rtl/verilator.vlt)")
    return 0 if result.clean else 1


def _print_register_map(config) -> None:
    from .rtl.regmap.generate import load_generated
    table = load_generated(config)[1].TABLE
    print(f"Register map of configuration {config.name!r} (docs/registers.md has every field):")
    for item in (*table.registers, *table.windows):
        access = ("rw" if item.sw_readable else "w") if item.sw_writable else "r"
        print(f"  {item.address:#08x}  {item.name:<22} {item.size} B  {access:<2}  {item.description}")


def cmd_map(args) -> int:
    config = CONFIGS[args.config]
    print(f"rram-cim: chip {config.name}: {config.cores} cores of {config.rows}x{config.columns} cells, "
          f"{config.neurons} neurons each, SPI at f_sys/{config.spi_divider}")
    _print_register_map(config)
    return 0


def cmd_demo(args) -> int:
    from .demo import run
    return run(args)


def cmd_sweep(args) -> int:
    from .sweep import run
    return run(args)


#: The boards of fpga/boards.py (named here so that the parser does not import the RTL).
BOARD_NAMES = ("icebreaker", "ulx3s")
#: rram_cim/blocks.py's BLOCKS, named here so the CLI starts without importing Amaranth.
BLOCK_NAMES = ("chip", "chip_cosim", "spi_target", "register_decoder", "cell_driver", "pv_engine", "inference",
               "mvm", "emulated_macro", "fpga_uart")


def cmd_build(args) -> int:
    from .fpga.boards import DoesNotFit, NotOnBoard, build
    try:
        report = build(args.board, args.out, args.config)
    except (DoesNotFit, NotOnBoard) as error:
        print(f"rram-cim build: {error}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    over = [cell for cell, (used, available) in report.utilisation.items() if used > available]
    return 0 if report.meets_timing and not over else 1


def cmd_flash(args) -> int:
    from .fpga.boards import FlashError, flash
    try:
        print(flash(args.board, args.bitstream, args.out) or f"{args.board}: flashed")
    except FlashError as error:
        print(f"rram-cim flash: {error}", file=sys.stderr)
        return 2
    return 0


#: cocotb benches `rram-cim sim --bench NAME` runs: (block to build, its cocotb tests in tests/).
SIM_BENCHES = {
    "spi": ("chip", PROJECT_ROOT / "tests" / "cocotb_chip.py"),
    "pv": ("chip", PROJECT_ROOT / "tests" / "cocotb_chip_pv.py"),
    "infer": ("chip", PROJECT_ROOT / "tests" / "cocotb_chip_infer.py"),
    "driver": ("cell_driver", PROJECT_ROOT / "tests" / "cocotb_driver.py"),
}


def check_sim(args) -> None:
    from .sim.toolchain import SIMULATORS, missing_simulator_message
    for simulator in SIMULATORS if args.simulator == "both" else (args.simulator,):
        problem = missing_simulator_message(simulator)
        if problem:
            raise SystemExit(f"rram-cim sim: {problem}")


def cmd_sim(args) -> int:
    import tempfile
    from .sim.runner import build, run
    from .sim.toolchain import SIMULATORS
    simulators = SIMULATORS if args.simulator == "both" else (args.simulator,)
    env = {"RRAM_CIM_CAMPAIGN_FRAMES": str(args.frames)}
    if args.seed is not None:
        env["RRAM_CIM_SEED"] = str(args.seed)
    root = pathlib.Path(args.build_dir or tempfile.mkdtemp(prefix="rram-cim-sim-"))
    block, module = SIM_BENCHES[args.bench]
    failed = 0
    for simulator in simulators:
        built = build(simulator, root, CONFIGS[args.config], block=block, waves=args.waves)
        tests, failures = run(built, module, testcase=args.test, extra_env=env, waves=args.waves)
        print(f"{simulator}: {tests - failures}/{tests} passed (build in {built.directory})")
        failed += failures + (tests == 0)
    return 1 if failed else 0


def cmd_bench(args) -> int:
    import runpy
    script = BENCH_DIR / f"{args.name}.py"
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="rram-cim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(p):
        p.add_argument("--config", type=config_name, default=REFERENCE.name, help=f"one of: {', '.join(CONFIGS)}")
        return p

    p = with_config(commands.add_parser("verilog", help="write the chip (or a block) as Verilog"))
    p.add_argument("--block", choices=BLOCK_NAMES, default="chip", metavar="BLOCK",
                   help=f"one of: {', '.join(BLOCK_NAMES)}")
    p.add_argument("-o", "--output", type=output_file, help="file to write (default: stdout)")
    p.set_defaults(func=cmd_verilog)

    p = commands.add_parser("regmap", help="regenerate decoder, host table and docs from the SystemRDL")
    p.add_argument("--check", action="store_true", help="only report stale generated files")
    p.set_defaults(func=cmd_regmap)

    p = with_config(commands.add_parser("lint", help="verilator --lint-only -Wall on the generated Verilog"))
    p.add_argument("--block", choices=BLOCK_NAMES, default="chip", metavar="BLOCK",
                   help=f"one of: {', '.join(BLOCK_NAMES)}")
    p.set_defaults(func=cmd_lint)

    p = with_config(commands.add_parser("map", help="print the register map"))
    p.set_defaults(func=cmd_map)

    p = with_config(commands.add_parser(
        "demo", help="the main job: digits trained, compiled, programmed through P&V and run, in co-simulation "
                     "(--task cnn, rbm: the CNN and the RBM recovery on the golden model)"))
    from .demo import add_arguments, check_arguments
    add_arguments(p)
    p.set_defaults(func=cmd_demo, validate=check_arguments)

    p = with_config(commands.add_parser(
        "sweep", help="Monte-Carlo chip yield and P&V recipe campaigns on the golden model, on Dask (docs/campaigns.md)"))
    from . import sweep
    sweep.add_arguments(p)
    p.set_defaults(func=cmd_sweep, validate=sweep.check_arguments)

    p = with_config(commands.add_parser("sim", help="run the cocotb benches on the generated Verilog"))
    p.add_argument("--simulator", choices=("icarus", "verilator", "both"), default="both")
    p.add_argument("--bench", choices=sorted(SIM_BENCHES), default="spi",
                   help="spi: register file and random campaign; pv: on-chip programming; driver: row/column drivers")
    p.add_argument("--test", help="one cocotb test by name (default: all)")
    p.add_argument("--frames", type=whole(1), default=10000, help="frames in the random campaign")
    p.add_argument("--seed", type=seed, help=f"seed of the random campaign (0 to {SEED_LIMIT - 1})")
    p.add_argument("--waves", action="store_true", help="dump waveforms (FST) in the build folder")
    p.add_argument("--build-dir", type=output_folder, help="where to build (default: a new temporary folder)")
    p.set_defaults(func=cmd_sim, validate=check_sim)

    p = commands.add_parser("build", help="FPGA bitstream for a board (YoWASP Yosys + nextpnr), with resources and Fmax")
    p.add_argument("--board", choices=BOARD_NAMES, required=True)
    p.add_argument("--config", type=config_name, default=None,
                   help="a configuration the board holds (default: icebreaker reference-lite, ulx3s reference; "
                        "the ulx3s also builds neurram-like)")
    p.add_argument("--out", type=output_folder, default="out/fpga",
                   help="build folder (a subfolder per board, <board>-<config> for a --config not the default)")
    p.set_defaults(func=cmd_build)

    p = commands.add_parser("flash", help="program a board with its bitstream (openFPGALoader)")
    p.add_argument("--board", choices=BOARD_NAMES, required=True)
    p.add_argument("--bitstream", default=None, help="bitstream file (default: the one `build` wrote)")
    p.add_argument("--out", type=output_folder, default="out/fpga")
    p.set_defaults(func=cmd_flash)

    p = commands.add_parser("bench", help="run a benchmark from bench/ (e.g. spi_throughput)")
    p.add_argument("name", type=bench_name, help=f"one of: {', '.join(bench_names())}")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="the bench's own arguments (rram-cim bench NAME --help)")
    p.set_defaults(func=cmd_bench)

    args = parser.parse_args(argv)
    try:
        if getattr(args, "validate", None):
            args.validate(args)
    except UsageError as problem:
        commands.choices[args.command].error(str(problem))
    try:
        code = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader left (`rram-cim map | head`): stop quietly, as a filter does. Python would fail
        # again flushing stdout at exit, so what is left goes nowhere.
        _stdout_to_devnull()
        return 1
    return code


def _stdout_to_devnull() -> None:
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
