import os
import subprocess
import sys

import pytest

from rram_cim.cli import bench_names, main


def test_verilog_writes_a_module(tmp_path):
    out = tmp_path / "chip.v"
    assert main(["verilog", "-o", str(out)]) == 0
    assert "module rram_cim_chip(" in out.read_text()


def test_verilog_refuses_unknown_block_and_config(capsys):
    assert _refused(capsys, ["verilog", "--block", "nope"]).startswith("rram-cim verilog: argument --block: invalid choice")
    assert "unknown configuration 'nope'; choose one of reference" in _refused(capsys, ["verilog", "--config", "nope"])


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


def _refused(capsys, argv) -> str:
    """The one line an argument error prints; exit status 2, nothing on stdout, before any work."""
    with pytest.raises(SystemExit) as exit:
        main(argv)
    out, err = capsys.readouterr()
    assert exit.value.code == 2, (argv, exit.value.code, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("rram-cim") and "Traceback" not in err, err
    return err.strip()


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize("argv, says", [
    (["demo", "--config", "bogus"], "argument --config: unknown configuration 'bogus'; choose one of reference"),
    (["demo", "--steps", "0"], "argument --steps: needs a whole number from 1 to 1024, not '0'"),
    (["demo", "--steps", "-3"], "argument --steps: needs a whole number from 1 to 1024, not '-3'"),
    (["demo", "--steps", str(10**7)], "argument --steps: needs a whole number from 1 to 1024, not '10000000'"),
    (["demo", "--epochs", "0"], "argument --epochs: needs a whole number of at least 1"),
    (["demo", "--samples", "0"], "argument --samples: needs a whole number of at least 1"),
    (["demo", "--seed", "-1"], "argument --seed: needs a whole number from 0 to 4294967295, not '-1'"),
    (["demo", "--seed", str(10 ** 23)], "argument --seed: needs a whole number from 0 to 4294967295"),
    (["demo", "--seed", "one"], "argument --seed: needs a whole number from 0 to 4294967295, not 'one'"),
    (["demo", "--transport", "model", "--network", "no/such.npz"], "argument --network: no/such.npz: no such file"),
    (["demo", "--transport", "model", "--port", "/dev/ttyUSB0"], "--port is for --transport serial, not model"),
    (["demo", "--transport", "serial", "--port", "/dev/no-such-tty"], "--port /dev/no-such-tty: no such device"),
    (["sim", "--frames", "0"], "argument --frames: needs a whole number of at least 1, not '0'"),
    (["sim", "--frames", "-5"], "argument --frames: needs a whole number of at least 1, not '-5'"),
    (["sim", "--seed", "-1"], "argument --seed: needs a whole number from 0"),
    (["sim", "--simulator", "modelsim"], "argument --simulator: invalid choice: 'modelsim'"),
    (["lint", "--block", "bogus"], "argument --block: invalid choice: 'bogus'"),
    (["map", "--config", "bogus"], "unknown configuration 'bogus'"),
    (["build", "--board", "nexys"], "argument --board: invalid choice: 'nexys'"),
    (["bench", "nope"], "argument name: no bench 'nope' in"),
    (["bench", "models", "--repeat", "0"], "rram-cim bench models: argument --repeat: needs a whole number of at least 1"),
    (["bench", "inference", "--simulators", "modelsim"], "rram-cim bench inference: argument --simulators: invalid choice"),
    (["bench", "inference", "--inferences", "0"], "argument --inferences: needs a whole number of at least 1"),
    (["bench", "spi_throughput", "--divider", "2"], "argument --divider: needs a number of at least 4 (the SPI target "
                                                    "allows SCK up to f_sys/4), not '2'"),
    (["bench", "spi_throughput", "--bytes", "0"], "argument --bytes: needs a whole number of at least 1"),
])
def test_arguments_are_refused_in_one_line_before_any_work(capsys, monkeypatch, argv, says):
    monkeypatch.setattr(sys, "argv", list(sys.argv))          # `bench` hands its script its own argv
    assert says in _refused(capsys, argv)


@pytest.mark.parametrize("argv", [["demo", "--out"], ["sim", "--build-dir"], ["build", "--board", "icebreaker", "--out"],
                                  ["bench", "models", "--out"]])
def test_an_output_folder_under_a_file_is_refused(capsys, monkeypatch, a_file, argv):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    assert f"{a_file}/out: {a_file} is a file, not a folder" in _refused(capsys, [*argv, str(a_file / "out")])


def test_verilog_into_a_missing_folder_is_refused(capsys, tmp_path, a_file):
    assert "the folder" in _refused(capsys, ["verilog", "-o", str(tmp_path / "missing" / "chip.v")])
    assert "does not exist; create it first" in _refused(capsys, ["verilog", "-o", str(tmp_path / "missing" / "c.v")])
    assert "is a file, not a folder" in _refused(capsys, ["verilog", "-o", str(a_file / "chip.v")])
    assert "is a folder; give a file name" in _refused(capsys, ["verilog", "-o", str(tmp_path)])


def test_bench_runs_only_the_benches_in_bench(capsys, tmp_path):
    # A script given as a path, inside or outside the project, is not a bench.
    script = tmp_path / "evil.py"
    script.write_text(f"open({str(tmp_path / 'ran')!r}, 'w')\n")
    for name in (str(script.with_suffix("")), f"../../../../..{script.with_suffix('')}", "bench/models", "models.py"):
        assert f"choose one of {', '.join(bench_names())}" in _refused(capsys, ["bench", name])
    assert {"device", "fpga", "inference", "models", "mvm", "pv_cosim", "spi_throughput"} <= set(bench_names())
    assert not (tmp_path / "ran").exists()


def test_rram_cim_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "rram_cim", "demo", "--steps", "0"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "rram-cim demo: argument --steps: needs a whole number from 1 to 1024, not '0'\n"


def test_output_into_a_closed_pipe_ends_quietly():
    # `rram-cim map | head`: the reader has gone; a pipe whose read end is closed refuses the first write.
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "rram_cim", "map"], stdout=write, stderr=subprocess.PIPE,
                              text=True)
    finally:
        os.close(write)
    assert done.returncode == 1 and done.stderr == ""


def test_verilog_replaces_its_output_whole(tmp_path, monkeypatch):
    # A failure while writing leaves the previous file as it was, and no partial file beside it.
    out = tmp_path / "chip.v"
    out.write_text("previous")
    import pathlib

    def write_half(path, text):
        with open(path, "w") as file:
            file.write(text[:len(text) // 2])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(pathlib.Path, "write_text", write_half)
    with pytest.raises(SystemExit, match=f"rram-cim verilog: cannot write {out}: No space left on device"):
        main(["verilog", "--block", "spi_target", "-o", str(out)])
    assert out.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["chip.v"]
