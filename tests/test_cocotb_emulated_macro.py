"""The emulated macro's Verilog on Icarus and Verilator, answer for answer against its Python reference."""

import pathlib

from rram_cim.sim.runner import run_and_check

#: The cocotb tests this file runs (the runner imports it from this folder).
SCENARIO = pathlib.Path(__file__).with_name("cocotb_emulated_macro.py")


def test_emulated_macro_answers_as_its_reference(emulated_macro_build):
    run_and_check(emulated_macro_build, SCENARIO)
