"""Which configurations each board builds, as the board runs them, and the bench's ULX3S comparison table;
no FPGA build (`rram-cim bench fpga --neurram-like` builds neurram-like, minutes, so not in CI)."""

import importlib.util
import pathlib

import pytest

from rram_cim.cli import main
from rram_cim.config import NEURRAM_LIKE, REFERENCE, REFERENCE_LITE
from rram_cim.fpga.boards import BOARDS, BuildReport, NotOnBoard, board_config, synthesis_options
from rram_cim.fpga.uart_bridge import SCK_HALF


def test_a_board_runs_a_configuration_at_its_own_clock_with_spi_no_faster_than_the_bridge():
    assert board_config("icebreaker") == REFERENCE_LITE                         # already 12 MHz: unchanged
    reference = board_config("ulx3s")
    assert reference == REFERENCE.replace(name="reference-25mhz", sys_clk_hz=25e6)
    neurram = board_config("ulx3s", "neurram-like")
    assert neurram.name == "neurram-like-25mhz" and (neurram.cores, neurram.rows, neurram.columns) == (4, 256, 256)
    # NEURRAM_LIKE's 10 MHz SPI would be f_sys / 2.5 at 25 MHz; the bridge drives SCK at f_sys / 8.
    assert NEURRAM_LIKE.spi_clk_hz == 10e6 and neurram.spi_clk_hz == 25e6 / (2 * SCK_HALF)


def test_the_icebreaker_builds_reference_lite_only():
    assert BOARDS["icebreaker"].configs == ("reference-lite",)
    with pytest.raises(NotOnBoard, match="the icebreaker builds reference-lite, not 'neurram-like'"):
        board_config("icebreaker", "neurram-like")


def test_build_refuses_a_configuration_the_board_does_not_hold_before_any_work(tmp_path, capsys):
    assert main(["build", "--board", "icebreaker", "--config", "reference", "--out", str(tmp_path)]) == 1
    assert "the icebreaker builds reference-lite, not 'reference'" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_only_neurram_likes_long_flag_chain_is_mapped_with_classic_abc():
    ulx3s, icebreaker = BOARDS["ulx3s"], BOARDS["icebreaker"]
    assert synthesis_options(icebreaker, board_config("icebreaker")) == {"synth_opts": "-dsp"}
    assert synthesis_options(ulx3s, board_config("ulx3s")) == {}
    classic = synthesis_options(ulx3s, board_config("ulx3s", "neurram-like"))
    assert classic["synth_opts"] == "-run begin:map_luts" and "abc -lut 4" in classic["script_after_synth"]


def _bench():
    path = pathlib.Path(__file__).resolve().parents[1] / "bench" / "fpga.py"
    spec = importlib.util.spec_from_file_location("bench_fpga", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_comparison_table_has_a_row_per_configuration_in_aligned_columns():
    reference = BuildReport("ulx3s", pathlib.Path("a.bit"), 123.4, {"DP16KD": (24, 208), "MULT18X18D": (6, 156)},
                            33.1, 25.0, 5489, 2304, "reference-25mhz")
    neurram = BuildReport("ulx3s", pathlib.Path("b.bit"), 600.0, {"DP16KD": (150, 208), "MULT18X18D": (6, 156)},
                          24.0, 25.0, 12000, 4557, "neurram-like-25mhz")
    lines = _bench().comparison_table({"reference": reference, "neurram-like": neurram})
    assert lines[0].split() == ["config", "LUT4", "FF", "DP16KD", "MULT18X18D", "Fmax", "MHz", "build", "s", "timing"]
    assert lines[1].split() == ["reference", "5,489", "2,304", "24", "/", "208", "6", "/", "156", "33.1", "123",
                                "meets", "25", "MHz"]
    assert lines[2].split()[:3] == ["neurram-like", "12,000", "4,557"] and lines[2].endswith("FAILS 25 MHz")
    assert len({len(line) - len(line.split("  ")[-1]) for line in lines[1:]}) == 1     # columns line up
