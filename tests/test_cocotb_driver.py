"""Row/column drivers on Icarus and Verilator with the Python analog macro attached by the bridge."""

import pathlib

from rram_cim.sim.runner import run_and_check

#: The cocotb tests this file runs (the runner imports it from this folder).
SCENARIO = pathlib.Path(__file__).with_name("cocotb_driver.py")


def test_driver_pulses_and_senses_match_the_macro_model(driver_build):
    run_and_check(driver_build, SCENARIO)
