"""`rram-cim demo` end to end: on the golden models alone, and with the RTL co-simulation on a few digits
(Verilator, the default simulator)."""

import json
import re

import pytest

from rram_cim.cli import main

PLOTS = ("confusion.png", "conductances.png", "raster.png", "convergence.png")


def _report(out):
    report = json.loads((out / "report.json").read_text())
    for plot in PLOTS:
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    return report


def test_demo_on_the_golden_models(tmp_path, capsys):
    assert main(["demo", "--transport", "model", "--epochs", "20", "--out", str(tmp_path)]) == 0
    report = _report(tmp_path)
    accuracy = report["accuracy"]
    assert set(accuracy) == {"float", "quantized", "chip_model", "relaxed 1 hour", "relaxed 1 day"}
    assert min(accuracy.values()) > 0.9
    assert accuracy["quantized"] - accuracy["chip_model"] < 0.03
    assert report["test_images"] == 360 and report["cosim_images"] == 0
    assert [p["cells"] for p in report["programming"]] == [4096, 4096]
    assert all(p["failed"] < 10 and 1 < p["mean_pulses"] < 20 for p in report["programming"])
    assert report["synaptic_events_per_inference"] > report["row_events_per_inference"] > 0
    energy = report["energy_pj_per_synaptic_event"]
    assert 0 < energy["array_pj"] < energy["total_pj"]
    out = capsys.readouterr().out
    assert "chip, golden model, 1 day later" in out and "no SPI: model transport only" in out
    # The saved network runs again without training, to the same figures.
    again = tmp_path / "again"
    assert main(["demo", "--transport", "model", "--network", str(tmp_path / "network.npz"), "--out", str(again)]) == 0
    assert _report(again)["accuracy"] == accuracy
    assert "network: loaded" in capsys.readouterr().out


def test_demo_in_cosimulation_matches_the_golden_model(tmp_path, capsys):
    assert main(["demo", "--samples", "2", "--epochs", "20", "--out", str(tmp_path)]) == 0
    report = _report(tmp_path)
    assert report["cosim"]["identical"] == 2 and report["cosim_images"] == 2
    subset = report["accuracy_on_cosim_subset"]
    assert subset["chip_rtl_cosim"] == subset["chip_model"]
    assert report["cosim"]["spi_frames_per_inference"] > 20
    out = capsys.readouterr().out
    assert "2 of 2 inferences identical" in out
    # Every accuracy in the table is printed to three decimals, on all digits and on the co-simulated ones.
    rows = [line for line in out.splitlines() if line.startswith(("float (", "quantized (", "chip, golden"))]
    assert len(rows) == 5 and all(re.search(r" \d\.\d{3} +\d\.\d{3}$", row) for row in rows), rows


def test_demo_refuses_a_test_set_of_nothing(tmp_path):
    with pytest.raises(SystemExit, match="--samples must be at least 1"):
        main(["demo", "--samples", "0", "--out", str(tmp_path)])


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
