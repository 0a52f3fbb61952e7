"""`rram-cim`: the command line of the project."""

from __future__ import annotations

import argparse
import pathlib
import sys

from .config import CONFIGS, REFERENCE

__all__ = ["main"]

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _config(name: str):
    try:
        return CONFIGS[name]
    except KeyError:
        raise SystemExit(f"rram-cim: unknown configuration {name!r}; choose one of {', '.join(CONFIGS)}")


def cmd_verilog(args) -> int:
    from .rtl.verilog import BLOCKS, to_verilog
    if args.block not in BLOCKS:
        raise SystemExit(f"rram-cim: unknown block {args.block!r}; choose one of {', '.join(BLOCKS)}")
    text = to_verilog(args.block, _config(args.config))
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        pathlib.Path(args.output).write_text(text)
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
    from .rtl.lint import lint
    result = lint(args.block, _config(args.config))
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
    config = _config(args.config)
    print(f"rram-cim: chip {config.name}: {config.cores} cores of {config.rows}x{config.columns} cells, "
          f"{config.neurons} neurons each, SPI at f_sys/{config.spi_divider}")
    _print_register_map(config)
    return 0


def cmd_demo(args) -> int:
    from .demo import run
    return run(args)


#: The boards of fpga/boards.py (named here so that the parser does not import the RTL).
BOARD_NAMES = ("icebreaker", "ulx3s")
#: rtl/verilog.py's BLOCKS, named here so the CLI starts without importing Amaranth.
BLOCK_NAMES = ("chip", "spi_target", "register_decoder", "cell_driver", "pv_engine", "inference",
               "emulated_macro", "fpga_uart")


def cmd_build(args) -> int:
    from .fpga.boards import DoesNotFit, build
    try:
        report = build(args.board, args.out)
    except DoesNotFit as error:
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


#: cocotb benches `rram-cim sim --bench NAME` runs: (block to build, test module).
SIM_BENCHES = {
    "spi": ("chip", "rram_cim.sim.cocotb_chip"),
    "pv": ("chip", "rram_cim.sim.cocotb_chip_pv"),
    "infer": ("chip", "rram_cim.sim.cocotb_chip_infer"),
    "driver": ("cell_driver", "rram_cim.sim.cocotb_driver"),
}


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
        built = build(simulator, root, _config(args.config), block=block, waves=args.waves)
        tests, failures = run(built, module, testcase=args.test, extra_env=env, waves=args.waves)
        print(f"{simulator}: {tests - failures}/{tests} passed (build in {built.directory})")
        failed += failures + (tests == 0)
    return 1 if failed else 0


def cmd_bench(args) -> int:
    script = PROJECT_ROOT / "bench" / f"{args.name}.py"
    if not script.exists():
        available = sorted(p.stem for p in (PROJECT_ROOT / "bench").glob("*.py"))
        raise SystemExit(f"rram-cim: no bench {args.name!r} in {PROJECT_ROOT / 'bench'}; "
                         f"available: {', '.join(available) or 'none (not a source checkout?)'}")
    import runpy
    sys.argv = [str(script), *args.rest]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rram-cim", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def with_config(p):
        p.add_argument("--config", default=REFERENCE.name, help=f"one of: {', '.join(CONFIGS)}")
        return p

    p = with_config(commands.add_parser("verilog", help="write the chip (or a block) as Verilog"))
    p.add_argument("--block", default="chip", help=f"one of: {', '.join(BLOCK_NAMES)}")
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.set_defaults(func=cmd_verilog)

    p = commands.add_parser("regmap", help="regenerate decoder, host table and docs from the SystemRDL")
    p.add_argument("--check", action="store_true", help="only report stale generated files")
    p.set_defaults(func=cmd_regmap)

    p = with_config(commands.add_parser("lint", help="verilator --lint-only -Wall on the generated Verilog"))
    p.add_argument("--block", default="chip")
    p.set_defaults(func=cmd_lint)

    p = with_config(commands.add_parser("map", help="print the register map"))
    p.set_defaults(func=cmd_map)

    p = with_config(commands.add_parser(
        "demo", help="the main job: digits trained, compiled, programmed through P&V and run, in co-simulation"))
    from .demo import add_arguments
    add_arguments(p)
    p.set_defaults(func=cmd_demo)

    p = with_config(commands.add_parser("sim", help="run the cocotb benches on the generated Verilog"))
    p.add_argument("--simulator", choices=("icarus", "verilator", "both"), default="both")
    p.add_argument("--bench", choices=sorted(SIM_BENCHES), default="spi",
                   help="spi: register file and random campaign; pv: on-chip programming; driver: row/column drivers")
    p.add_argument("--test", help="one cocotb test by name (default: all)")
    p.add_argument("--frames", type=int, default=10000, help="frames in the random campaign")
    p.add_argument("--seed", type=int, help="seed of the random campaign")
    p.add_argument("--waves", action="store_true", help="dump waveforms (FST) in the build folder")
    p.add_argument("--build-dir", help="where to build (default: a new temporary folder)")
    p.set_defaults(func=cmd_sim)

    p = commands.add_parser("build", help="FPGA bitstream for a board (YoWASP Yosys + nextpnr), with resources and Fmax")
    p.add_argument("--board", choices=BOARD_NAMES, required=True)
    p.add_argument("--out", default="out/fpga", help="build folder (a subfolder per board)")
    p.set_defaults(func=cmd_build)

    p = commands.add_parser("flash", help="program a board with its bitstream (openFPGALoader)")
    p.add_argument("--board", choices=BOARD_NAMES, required=True)
    p.add_argument("--bitstream", default=None, help="bitstream file (default: the one `build` wrote)")
    p.add_argument("--out", default="out/fpga")
    p.set_defaults(func=cmd_flash)

    p = commands.add_parser("bench", help="run a benchmark from bench/ (e.g. spi_throughput)")
    p.add_argument("name")
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
