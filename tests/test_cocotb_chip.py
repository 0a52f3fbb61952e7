"""The chip's generated Verilog on Icarus and Verilator, driven through SPI by the cocotb bench.

The bench's tests run as `rram-cim sim --bench spi` runs them: all in one simulator process, in the
module's order, so each must start from whatever the previous one left in the chip's memories
(cocotb_chip.py beside this file says how).
"""

import pathlib

from rram_cim.sim.runner import run

#: The cocotb tests this file runs (the runner imports it from this folder).
SCENARIO = pathlib.Path(__file__).with_name("cocotb_chip.py")

TESTS = 3


def test_spi_bench_runs_whole_in_one_simulator_run_as_the_cli_does(chip_build):
    # Verilator runs the full 10,000-frame random campaign; Icarus, about 7x slower, the first 4,000 of
    # the same generator, which keeps the suite within CI's budget (`rram-cim sim` runs it whole).
    env = {"RRAM_CIM_CAMPAIGN_FRAMES": "4000"} if chip_build.simulator == "icarus" else {}
    tests, failures = run(chip_build, SCENARIO, extra_env=env)
    assert (tests, failures) == (TESTS, 0), f"{failures} of {tests} cocotb tests failed on {chip_build.simulator}"
