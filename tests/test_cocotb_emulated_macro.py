"""The emulated macro's Verilog on Icarus and Verilator, answer for answer against its Python reference."""

from rram_cim.sim.runner import run_and_check


def test_emulated_macro_answers_as_its_reference(emulated_macro_build):
    run_and_check(emulated_macro_build, "rram_cim.sim.cocotb_emulated_macro")
