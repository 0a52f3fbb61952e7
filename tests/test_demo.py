"""`rram-cim demo` end to end: on the golden models alone, and with the RTL co-simulation on a few digits
(Verilator, the default simulator)."""

import json
import os
import re

import pytest

from rram_cim.cli import main
from rram_cim.demo import OUTPUTS, PLOTS, SIMULATOR_LOG

#: The smallest run that trains: seconds, for the tests of what a run leaves behind.
SMALL = ["--epochs", "1", "--steps", "4", "--samples", "1"]


def _report(out):
    report = json.loads((out / "report.json").read_text())
    for plot in PLOTS:
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    return report


def test_demo_on_the_golden_models(tmp_path, capsys):
    (tmp_path / "report.json").write_text("an older run's")
    (tmp_path / SIMULATOR_LOG).write_text("an older co-simulation's")
    assert main(["demo", "--transport", "model", "--epochs", "20", "--out", str(tmp_path)]) == 0
    # Every output is this run's: none left from an older run, no scratch folder left.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(OUTPUTS)
    report = _report(tmp_path)
    accuracy = report["accuracy"]
    assert set(accuracy) == {"float", "quantized", "chip_model", "relaxed 1 hour", "relaxed 1 day"}
    assert min(accuracy.values()) > 0.9
    assert accuracy["quantized"] - accuracy["chip_model"] < 0.03
    assert report["test_images"] == 360 and report["cosim_images"] == 0
    assert [p["cells"] for p in report["programming"]] == [4096, 4096]
    assert all(p["failed"] < 10 and 1 < p["mean_pulses"] < 20 for p in report["programming"])
    # Read back by the chip's own 4-read average (HOLDING recipes), and the model's true conductances.
    assert all(p["verify_reads"] == 4 and p["in_window"] > 0.9 and p["in_window_true"] > 0.9
               for p in report["programming"])
    assert report["synaptic_events_per_inference"] > report["row_events_per_inference"] > 0
    energy = report["energy_pj_per_synaptic_event"]
    assert 0 < energy["array_pj"] < energy["total_pj"]
    out = capsys.readouterr().out
    assert "chip, golden model, 1 day later" in out and "no SPI: model transport only" in out
    # The saved network runs again without training, to the same figures.
    again = tmp_path / "again"
    assert main(["demo", "--transport", "model", "--network", str(tmp_path / "network.npz"), "--out", str(again)]) == 0
    assert _report(again)["accuracy"] == accuracy
    assert (again / "network.npz").read_bytes() == (tmp_path / "network.npz").read_bytes()
    assert "network: loaded" in capsys.readouterr().out


def test_demo_in_cosimulation_matches_the_golden_model(tmp_path, capfd):
    assert main(["demo", "--samples", "2", "--epochs", "20", "--out", str(tmp_path)]) == 0
    report = _report(tmp_path)
    assert report["cosim"]["identical"] == 2 and report["cosim_images"] == 2
    subset = report["accuracy_on_cosim_subset"]
    assert subset["chip_rtl_cosim"] == subset["chip_model"]
    assert report["cosim"]["spi_frames_per_inference"] > 20
    out = capfd.readouterr().out
    assert "2 of 2 inferences identical" in out
    # The simulator's own lines (cocotb, GPI) are in its log, not among the demo's; programming shows a
    # bar per core. (Whether the build's ticker and a separate read-back bar show depends on how long
    # they take: tests/test_progress.py pins those down.)
    assert "gpi" not in out and " INFO " not in out, out
    assert "gpi" in (tmp_path / SIMULATOR_LOG).read_text()
    assert "(cosim): core 1" in out
    # Every accuracy in the table is printed to three decimals, on all digits and on the co-simulated ones.
    rows = [line for line in out.splitlines() if line.startswith(("float (", "quantized (", "chip, golden"))]
    assert len(rows) == 5 and all(re.search(r" \d\.\d{3} +\d\.\d{3}$", row) for row in rows), rows


def test_demo_refuses_a_test_set_of_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["demo", "--samples", "0", "--out", str(tmp_path)])
    assert exit.value.code == 2
    assert capsys.readouterr().err == "rram-cim demo: argument --samples: needs a whole number of at least 1, not '0'\n"


def _previous_run(out):
    out.mkdir(exist_ok=True)
    for name in OUTPUTS:
        (out / name).write_text(f"the previous run's {name}")


def _unchanged(out):
    assert sorted(p.name for p in out.iterdir() if p.name != SIMULATOR_LOG) == sorted(OUTPUTS)
    assert all((out / name).read_text() == f"the previous run's {name}" for name in OUTPUTS)


def test_a_failing_demo_leaves_the_previous_outputs_intact(tmp_path, monkeypatch):
    # The network is trained (and written) before compiling fails: none of it reaches --out.
    import rram_cim.host.compiler as compiler

    def fail(*args, **kwargs):
        raise MemoryError("out of memory while compiling")
    monkeypatch.setattr(compiler, "compile_network", fail)
    _previous_run(tmp_path)
    with pytest.raises(MemoryError):
        main(["demo", "--transport", "model", *SMALL, "--out", str(tmp_path)])
    _unchanged(tmp_path)


def test_a_failing_cosimulation_says_where_the_simulator_log_is(tmp_path, monkeypatch, capfd):
    from rram_cim import demo
    from rram_cim.sim.cosim_link import CosimError

    def simulator_fails(*args, **kwargs):
        os.write(1, b"     0.00ns INFO     gpi                                ..mbed/gpi_embed.cpp:93   in _embed_init\n")
        raise CosimError("the co-simulation stopped answering: [Errno 32] Broken pipe")
    monkeypatch.setattr(demo, "_on_chip", simulator_fails)
    _previous_run(tmp_path)
    with pytest.raises(SystemExit) as exit:
        main(["demo", *SMALL, "--out", str(tmp_path)])
    log = tmp_path / SIMULATOR_LOG
    assert str(exit.value) == (f"rram-cim demo: cosim failed: the co-simulation stopped answering: [Errno 32] Broken "
                               f"pipe; the simulator's output is in {log}; {tmp_path} keeps the previous run's outputs")
    assert "gpi" in log.read_text() and "gpi" not in capfd.readouterr().out
    _unchanged(tmp_path)


def test_demo_refuses_a_file_that_is_not_a_network(tmp_path):
    bogus = tmp_path / "bogus.npz"
    bogus.write_bytes(b"not a zip file")
    with pytest.raises(SystemExit, match="is not a network saved by rram-cim"):
        main(["demo", "--transport", "model", "--network", str(bogus), "--out", str(tmp_path)])


def test_demo_on_a_board_that_is_not_there_fails_fast(tmp_path, monkeypatch):
    from serial.tools import list_ports
    monkeypatch.setattr(list_ports, "comports", lambda: [])
    with pytest.raises(SystemExit, match="no board found"):
        main(["demo", "--transport", "serial", "--out", str(tmp_path)])
