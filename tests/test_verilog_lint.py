import re

import pytest

from rram_cim.config import CONFIGS
from rram_cim.blocks import BLOCKS, to_verilog
from rram_cim.sim.lint import WAIVERS, lint


#: The FPGA blocks are for boards, which hold the reference chip or its reduced set (docs/fpga.md).
FPGA_BLOCKS = {"emulated_macro", "fpga_uart"}
#: The co-simulation's top adds a gateware SPI controller to the chip, whichever config: linted once.
SIM_BLOCKS = {"chip_cosim"}
#: The blocks `reference-lite`'s one page of neuron settings changes; the others are the reference's.
LITE_BLOCKS = {"chip", "inference", *FPGA_BLOCKS}


#: NeuRRAM's 48 cores: linted by `rram-cim lint --config neurram` (clean; ~70 s and 3.7 GB, too long for
#: the suite's budget); the suite lints every block on neurram-like, whose cores are the same size.
NEURRAM_BLOCKS: set[str] = set()


def linted(block: str, config: str) -> bool:
    if config == "reference-lite":
        return block in LITE_BLOCKS
    if config == "neurram":
        return block in NEURRAM_BLOCKS
    return block not in FPGA_BLOCKS | SIM_BLOCKS or config == "reference"


PAIRS = [(block, config) for block in sorted(BLOCKS) for config in sorted(CONFIGS) if linted(block, config)]


@pytest.mark.parametrize("block,config", PAIRS)
def test_verilator_lint_wall_is_clean(block, config):
    result = lint(block, CONFIGS[config])
    assert result.clean, "\n".join(result.messages)


def test_every_waiver_gives_its_reason():
    lines = WAIVERS.read_text().splitlines()
    for index, line in enumerate(lines):
        if line.startswith("lint_off"):
            before = index - 1
            while lines[before].startswith("lint_off"):      # several rules may share one reason
                before -= 1
            assert lines[before].startswith("//"), f"waiver without a reason: {line}"


def test_lint_catches_a_real_problem(tmp_path, monkeypatch):
    # The waivers must not hide everything: an undriven wire in the top module still fails.
    import rram_cim.sim.lint as lint_module
    text = to_verilog("spi_target")
    cut = text.rindex("endmodule")
    broken = text[:cut] + "  wire lint_undriven;\n  wire lint_sink = lint_undriven;\n" + text[cut:]
    monkeypatch.setattr(lint_module, "to_verilog", lambda block, config: broken)
    assert not lint_module.lint("spi_target").clean


def test_unknown_block_is_refused():
    with pytest.raises(ValueError, match="unknown block 'nope'"):
        to_verilog("nope")


def test_module_is_named_after_block():
    assert re.search(r"^module rram_cim_spi_target\(", to_verilog("spi_target"), re.M)


def test_the_cli_names_every_block():
    from rram_cim.cli import BLOCK_NAMES
    assert list(BLOCK_NAMES) == list(BLOCKS)
