"""On-chip programming through SPI on Icarus and Verilator, the analog macro model on the port."""

import pathlib

import pytest

from cocotb_chip_pv import RECIPES
from rram_cim.sim.runner import run_and_check

#: The cocotb tests this file runs (the runner imports it from this folder).
SCENARIO = pathlib.Path(__file__).with_name("cocotb_chip_pv.py")


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_programming_a_row_matches_the_reference(chip_build, recipe):
    # One simulator run per recipe (cocotb's parametrized test `.../name=RECIPE`): a failure names it.
    run_and_check(chip_build, SCENARIO, f"programming_a_row_through_spi_matches_the_reference/name={recipe}")


@pytest.mark.parametrize("testcase", [
    "bad_selection_is_refused_and_abort_stops_the_engine",
    "reset_mid_programming_leaves_an_idle_chip",
    "host_programmer_programs_rows_and_reads_them_back/recipes=igvva_levels",
    "host_programmer_programs_rows_and_reads_them_back/recipes=holding",
    "a_silent_macro_ends_either_engine_through_the_watchdog",
])
def test_chip_programming(chip_build, testcase):
    run_and_check(chip_build, SCENARIO, testcase)
