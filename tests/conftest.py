import pathlib

import pytest

from rram_cim.sim.toolchain import SIMULATORS, missing_simulator_message

_builds = {}


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("sim_build")


def _build(simulator: str, block: str, root: pathlib.Path):
    """Each block compiled once per simulator for the whole session (per xdist worker)."""
    problem = missing_simulator_message(simulator)
    if problem:
        # Not a skip: the README's test command installs both simulators, so a missing one is a failure.
        pytest.fail(problem)
    from rram_cim.sim.runner import build
    if (simulator, block) not in _builds:
        _builds[simulator, block] = build(simulator, root, block=block)
    return _builds[simulator, block]


@pytest.fixture(scope="session", params=SIMULATORS)
def chip_build(request, sim_root):
    """The chip as co-simulations build it (with the gateware SPI controller beside its pins), which the
    cocotb benches drive through the pins themselves."""
    return _build(request.param, "chip_cosim", sim_root)


@pytest.fixture(scope="session")
def verilator_chip_build(sim_root):
    """The chip on Verilator alone, for checks of the RTL's own behaviour too slow to repeat on Icarus."""
    return _build("verilator", "chip_cosim", sim_root)


@pytest.fixture(scope="session", params=SIMULATORS)
def driver_build(request, sim_root):
    return _build(request.param, "cell_driver", sim_root)


@pytest.fixture(scope="session", params=SIMULATORS)
def fpga_build(request, sim_root):
    """The FPGA build (chip, emulated macro, UART bridge), compiled once per simulator."""
    return _build(request.param, "fpga_uart", sim_root)


@pytest.fixture(scope="session", params=SIMULATORS)
def emulated_macro_build(request, sim_root):
    """The FPGA's emulated macro alone, compiled once per simulator."""
    return _build(request.param, "emulated_macro", sim_root)
