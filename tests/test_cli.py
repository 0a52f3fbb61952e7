import subprocess
import sys

import pytest

from rram_cim.cli import main


def test_verilog_writes_a_module(tmp_path):
    out = tmp_path / "chip.v"
    assert main(["verilog", "-o", str(out)]) == 0
    assert "module rram_cim_chip(" in out.read_text()


def test_verilog_refuses_unknown_block_and_config():
    with pytest.raises(SystemExit, match="unknown block"):
        main(["verilog", "--block", "nope"])
    with pytest.raises(SystemExit, match="unknown configuration"):
        main(["verilog", "--config", "nope"])


def test_regmap_check_reports_current_files(capsys):
    assert main(["regmap", "--check"]) == 0


def test_map_prints_the_register_map(capsys):
    assert main(["map"]) == 0
    out = capsys.readouterr().out
    assert "0x000000  chip_id" in out


def test_console_script_is_installed():
    done = subprocess.run([sys.executable, "-m", "rram_cim.cli", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "verilog" in done.stdout


def test_map_shows_each_window_access(capsys):
    assert main(["map"]) == 0
    lines = {line.split()[1]: line.split()[4] for line in capsys.readouterr().out.splitlines()
             if line.startswith("  0x")}
    assert (lines["spike_in_burst"], lines["pv_target"], lines["pv_pulses"]) == ("w", "rw", "r")
