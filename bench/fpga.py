"""FPGA resources: every board built, and where the logic goes.

    rram-cim bench fpga [--boards icebreaker ulx3s] [--out DIR]
    python bench/fpga.py ...

1. Each board's bitstream built with the YoWASP tools (as `rram-cim build`): LUTs and flip-flops from
   synthesis, nextpnr's utilisation, Fmax against the board clock, build time; a design that does not
   fit says how many cells it needed.
2. The FPGA build synthesized for the iCE40 without flattening: LUTs, flip-flops and carries per block.
3. LUTs per neuron and per synapse (a synapse is a differential pair of cells; the cells themselves sit
   in RAM, as ReRAM would sit beside the logic), next to ODIN's published figures (Frenkel et al.,
   IEEE TBioCAS 2019: 256 neurons and 64k 4-bit synapses in 0.086 mm^2 of 28 nm CMOS, synapses in SRAM).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile

from rram_cim.cli import ArgumentParser, output_folder
from rram_cim.config import REFERENCE
from rram_cim.fpga.boards import BOARDS, DoesNotFit, build, ice40_stat

PROG = "rram-cim bench fpga"

ODIN = {"neurons": 256, "synapses": 65536, "area_mm2": 0.086, "node_nm": 28}


def block_breakdown(config=REFERENCE) -> list[tuple[str, int, int, int]]:
    """(block, LUT4, FF, carry) of the UART build for the iCE40UP5K, synthesized without flattening."""
    from amaranth.back import verilog

    from rram_cim.fpga.top import UartChip

    class UP5K:
        device = "iCE40UP5K"
    with tempfile.TemporaryDirectory() as scratch:
        text = ice40_stat(verilog.convert(UartChip(config), name="top", platform=UP5K()), scratch, "-dsp -noflatten")
    rows = []
    for section in re.split(r"\n=== ", text)[1:]:
        name = section.split(" ===")[0]
        if name == "design hierarchy":
            continue

        def count(pattern):
            return sum(int(n) for n in re.findall(rf"^\s+(\d+)\s+{pattern}\s*$", section, re.M))
        rows.append((name.removeprefix("top."), count("SB_LUT4"), count(r"SB_DFF\w*"), count("SB_CARRY")))
    return sorted(rows, key=lambda row: -row[1])


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--boards", nargs="+", default=sorted(BOARDS), choices=sorted(BOARDS))
    parser.add_argument("--out", type=output_folder, default="out/bench/fpga")
    args = parser.parse_args(argv)

    reports = {}
    for board in args.boards:
        print(f"[{board}] building...", flush=True)
        try:
            reports[board] = build(board, args.out)
            print("\n".join(reports[board].lines()))
        except DoesNotFit as error:
            print(f"  {error}")

    print("\nLogic per block, iCE40 synthesis without flattening (reference chip):")
    print(f"{'block':<34} {'LUT4':>6} {'FF':>6} {'carry':>6}")
    rows = block_breakdown()
    for name, luts, flops, carries in rows:
        if luts or flops:
            print(f"{name:<34} {luts:>6} {flops:>6} {carries:>6}")

    neurons = REFERENCE.cores * REFERENCE.neurons
    synapses = REFERENCE.cells_total // 2
    print(f"\nPer neuron and per synapse ({neurons} neurons, {synapses} differential synapses):")
    for board, report in reports.items():
        print(f"  {board}: {report.luts / neurons:.1f} LUT4 per neuron, {report.luts / synapses:.2f} per synapse "
              "(the whole chip's logic; the cells sit in RAM)")
    print(f"  ODIN (ASIC, {ODIN['node_nm']} nm): {ODIN['neurons']} neurons and {ODIN['synapses']} synapses in "
          f"{ODIN['area_mm2']} mm^2, {ODIN['area_mm2'] * 1e6 / ODIN['synapses']:.2f} um^2 per synapse (SRAM)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
