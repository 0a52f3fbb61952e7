"""SPI throughput of the chip in co-simulation, Icarus vs Verilator, measured in one run.

    rram-cim bench spi_throughput [--bytes N] [--divider D]
    python bench/spi_throughput.py ...

Reports payload bytes per second of simulated time (what the chip would do at ChipConfig's clocks) and
per wall-clock second (how fast the co-simulation runs), plus system cycles simulated per wall second,
with Verilator's figures as a ratio to Icarus's.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

from rram_cim.cli import ArgumentParser, number, whole
from rram_cim.config import REFERENCE, SPI_DIVIDER_MIN
from rram_cim.sim.runner import build, run
from rram_cim.sim.toolchain import SIMULATORS

PROG = "rram-cim bench spi_throughput"
#: The cocotb test this bench runs in each simulator.
SCENARIO = pathlib.Path(__file__).with_name("_cocotb_spi_throughput.py")


def measure(simulator: str, root: pathlib.Path, payload: int, divider: float) -> dict:
    print(f"[{simulator}] building...", flush=True)
    built = build(simulator, root)
    out = root / f"{simulator}.json"
    print(f"[{simulator}] moving {payload} bytes each way at SCK = f_sys/{divider:g}...", flush=True)
    started = time.perf_counter()
    tests, failures = run(built, SCENARIO, extra_env={
        "RRAM_CIM_BENCH_OUT": str(out), "RRAM_CIM_BENCH_BYTES": str(payload),
        "RRAM_CIM_BENCH_DIVIDER": str(divider)})
    if tests != 1 or failures:
        raise SystemExit(f"{simulator}: the throughput test failed (see the log above)")
    figures = json.loads(out.read_text())
    figures["build_seconds"] = built.seconds
    figures["process_seconds"] = time.perf_counter() - started
    return figures


def main(argv=None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bytes", type=whole(1), default=8192, help="payload bytes written, then read back")
    parser.add_argument("--divider", type=number(SPI_DIVIDER_MIN, " (the SPI target allows SCK up to f_sys/4)"),
                        default=SPI_DIVIDER_MIN, help=f"SCK period in system clock cycles (at least {SPI_DIVIDER_MIN})")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory(prefix="rram-cim-bench-") as scratch:
        for simulator in SIMULATORS:
            results[simulator] = measure(simulator, pathlib.Path(scratch), args.bytes, args.divider)

    print(f"\nSPI burst throughput, reference config (f_sys = {REFERENCE.sys_clk_hz / 1e6:g} MHz, "
          f"SCK = f_sys/{args.divider:g}, 256-byte bursts, {2 * args.bytes} payload bytes)")
    header = f"{'simulator':<10} {'B/s simulated':>14} {'B/s wall':>10} {'cycles/s wall':>14} " \
             f"{'wall s':>8} {'build s':>8}"
    print(header)
    print("-" * len(header))
    for simulator, f in results.items():
        print(f"{simulator:<10} {f['payload_bytes'] / f['sim_seconds']:>14,.0f} "
              f"{f['payload_bytes'] / f['wall_seconds']:>10,.0f} {f['cycles'] / f['wall_seconds']:>14,.0f} "
              f"{f['wall_seconds']:>8.2f} {f['build_seconds']:>8.2f}")
    icarus, verilator = results["icarus"], results["verilator"]
    print(f"\nVerilator / Icarus wall-clock speed: {icarus['wall_seconds'] / verilator['wall_seconds']:.2f}x "
          f"(same simulated work: {icarus['cycles']:,.0f} vs {verilator['cycles']:,.0f} cycles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
