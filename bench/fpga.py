"""FPGA resources: every board built, and where the logic goes.

    rram-cim bench fpga [--boards icebreaker ulx3s] [--neurram-like] [--out DIR]
    python bench/fpga.py ...

1. Each board's bitstream built with the YoWASP tools (as `rram-cim build`): LUTs and flip-flops from
   synthesis, nextpnr's utilisation, Fmax against the board clock, build time; a design that does not
   fit says how many cells it needed.
2. The FPGA build synthesized for the iCE40 without flattening: LUTs, flip-flops and carries per block.
3. LUTs per neuron and per synapse (a synapse is a differential pair of cells; the cells themselves sit
   in RAM, as ReRAM would sit beside the logic), next to ODIN's published figures (Frenkel et al.,
   IEEE TBioCAS 2019: 256 neurons and 64k 4-bit synapses in 0.086 mm^2 of 28 nm CMOS, synapses in SRAM).
4. With --neurram-like: the 4 x 256 x 256 configuration (config.NEURRAM_LIKE, 256 KiB of cell codes) built
   for the ULX3S too, its row beside the reference's (LUT4, FF, DP16KD, MULT18X18D, Fmax, build time).
   It takes minutes more, so CI does not run it (tests/test_fpga_boards.py builds each board's default).
"""

from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile

from rram_cim.cli import ArgumentParser, output_folder
from rram_cim.config import CONFIGS, REFERENCE
from rram_cim.fpga.boards import BOARDS, BuildReport, DoesNotFit, build, ice40_stat

PROG = "rram-cim bench fpga"

ODIN = {"neurons": 256, "synapses": 65536, "area_mm2": 0.086, "node_nm": 28}


def block_breakdown(config=REFERENCE) -> list[tuple[str, int, int, int]]:
    """(block, LUT4, FF, carry) of the UART build for the iCE40UP5K, synthesized without flattening."""
    from amaranth.back import verilog

    from rram_cim.fpga.top import UartChip

    class UP5K:
        device = "iCE40UP5K"
    with tempfile.TemporaryDirectory() as scratch:
        try:
            text = ice40_stat(verilog.convert(UartChip(config), name="top", platform=UP5K()), scratch,
                              "-dsp -noflatten")
        except subprocess.CalledProcessError:
            log = pathlib.Path(scratch, "synth.log")
            errors = [line for line in (log.read_text().splitlines() if log.exists() else ()) if "ERROR" in line]
            raise RuntimeError(errors[-1] if errors else "Yosys failed without an ERROR line") from None
    rows = []
    for section in re.split(r"\n=== ", text)[1:]:
        name = section.split(" ===")[0]
        if name == "design hierarchy":
            continue

        def count(pattern):
            return sum(int(n) for n in re.findall(rf"^\s+(\d+)\s+{pattern}\s*$", section, re.M))
        rows.append((name.removeprefix("top."), count("SB_LUT4"), count(r"SB_DFF\w*"), count("SB_CARRY")))
    return sorted(rows, key=lambda row: -row[1])


#: The columns of the ULX3S comparison: heading, and how a report gives it.
COMPARISON = (("LUT4", lambda r: f"{r.luts:,}"), ("FF", lambda r: f"{r.flip_flops:,}"),
              ("DP16KD", lambda r: _used(r, "DP16KD")), ("MULT18X18D", lambda r: _used(r, "MULT18X18D")),
              ("Fmax MHz", lambda r: f"{r.fmax_mhz:.1f}"), ("build s", lambda r: f"{r.seconds:.0f}"))


def _used(report: BuildReport, cell: str) -> str:
    used, available = report.utilisation.get(cell, (0, 0))
    return f"{used} / {available}"


def comparison_table(reports: dict[str, BuildReport]) -> list[str]:
    """One row per configuration built (name -> its report), under a heading: the ULX3S table of
    docs/fpga.md, with whether each meets the board clock."""
    width = max(len(name) for name in ("config", *reports))
    columns = [max(len(heading), *(len(cell(r)) for r in reports.values())) for heading, cell in COMPARISON]
    lines = ["  ".join([f"{'config':<{width}}", *(f"{h:>{w}}" for (h, _), w in zip(COMPARISON, columns)),
                        "timing"])]
    for name, report in reports.items():
        timing = f"{'meets' if report.meets_timing else 'FAILS'} {report.target_mhz:g} MHz"
        lines.append("  ".join([f"{name:<{width}}", *(f"{cell(report):>{w}}" for (_, cell), w in
                                                       zip(COMPARISON, columns)), timing]))
    return lines


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boards", nargs="+", default=sorted(BOARDS), choices=sorted(BOARDS))
    parser.add_argument("--neurram-like", action="store_true",
                        help="also build neurram-like (4 cores of 256x256) for the ULX3S, beside its reference")
    parser.add_argument("--out", type=output_folder, default="out/bench/fpga")
    args = parser.parse_args(argv)

    # (board, configuration) pairs, one build at a time: each takes both cores of a small machine.
    builds = [(board, BOARDS[board].configs[0]) for board in args.boards]
    if args.neurram_like:
        builds += [("ulx3s", name) for name in ("reference", "neurram-like") if ("ulx3s", name) not in builds]
    reports = {}
    for board, name in builds:
        print(f"[{board}, {name}] building...", flush=True)
        try:
            reports[board, name] = build(board, args.out, name)
            print("\n".join(reports[board, name].lines()))
        except DoesNotFit as error:
            print(f"  {error}")

    ulx3s = {name: report for (board, name), report in reports.items() if board == "ulx3s"}
    if args.neurram_like and ulx3s:
        print("\nThe ULX3S (LFE5U-85F) with each configuration (LUT4 and FF from synthesis, the rest nextpnr's):")
        print("\n".join(comparison_table(ulx3s)))
        if "neurram-like" in ulx3s:
            print("  (neurram-like's LUTs mapped by classic ABC, the reference's by ABC9: fpga/boards.py CLASSIC_ABC)")

    print("\nLogic per block, iCE40 synthesis without flattening (reference chip):")
    try:
        rows = block_breakdown()
    except RuntimeError as error:           # Yosys 0.70 of YoWASP: an assertion in ABC9 reintegration
        rows = []
        print(f"  not available: Yosys failed ({error})")
    if rows:
        print(f"{'block':<34} {'LUT4':>6} {'FF':>6} {'carry':>6}")
    for name, luts, flops, carries in rows:
        if luts or flops:
            print(f"{name:<34} {luts:>6} {flops:>6} {carries:>6}")

    print("\nPer neuron and per differential synapse (the whole chip's logic; the cells sit in RAM):")
    for (board, name), report in reports.items():
        config = CONFIGS[name]
        neurons, synapses = config.cores * config.neurons, config.cells_total // 2
        print(f"  {board}, {name} ({neurons} neurons, {synapses} synapses): {report.luts / neurons:.1f} LUT4 per "
              f"neuron, {report.luts / synapses:.2f} per synapse")
    print(f"  ODIN (ASIC, {ODIN['node_nm']} nm): {ODIN['neurons']} neurons and {ODIN['synapses']} synapses in "
          f"{ODIN['area_mm2']} mm^2, {ODIN['area_mm2'] * 1e6 / ODIN['synapses']:.2f} um^2 per synapse (SRAM)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
