"""`rram-cim demo --task cnn|rbm`: each run small (a few epochs, a few digits) to what it writes, and the
arguments that have no meaning for a task refused in one line before any work. (`--task mlp`, the default,
is tests/test_demo.py's.)"""

import argparse
import json

import pytest

from rram_cim.cli import main
from rram_cim.config import REFERENCE
from rram_cim.demo import _resolve_defaults, add_arguments

PNG = b"\x89PNG\r\n\x1a\n"


def _written(out) -> dict:
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_cnn_task_scores_float_quantized_chip_and_chip_after_a_day(tmp_path, capsys):
    assert main(["demo", "--task", "cnn", "--epochs", "4", "--samples", "6", "--out", str(tmp_path)]) == 0
    files = _written(tmp_path)
    assert sorted(files) == ["cnn.png", "report.json"]            # no scratch folder left, no network.npz
    assert files["cnn.png"][:8] == PNG
    report = json.loads(files["report.json"])
    # The bench's seeds: data split and training 0, chip 1.
    assert report["task"] == "cnn" and report["config"] == "neurram-like"
    assert (report["training_seed"], report["seed"]) == (0, 1)
    rows = {row["setting"]: row for row in report["results"]}
    assert list(rows) == ["float", "quantized", "chip model", "chip model after 1 day"]
    # Four epochs are far above chance (10 %) on all 360 held-out digits; the chip ran the first 6 (two parts).
    assert rows["float"]["accuracy"] > 0.6 and rows["quantized"]["accuracy"] > 0.6
    assert rows["float"]["digits"] == rows["quantized"]["digits"] == 360
    assert rows["chip model"]["digits"] == rows["chip model after 1 day"]["digits"] == 6
    assert rows["chip model"]["accuracy"] >= 0.5 and rows["chip model after 1 day"]["accuracy"] >= 0.5
    assert rows["chip model"]["age_s"] == 0 and rows["chip model after 1 day"]["age_s"] == 86400
    assert all(rows[name]["neuron_noise"] for name in ("chip model", "chip model after 1 day"))
    assert report["relaxation"] == {"setting": "chip model after 1 day", "age_s": 86400.0, "target": 0.985,
                                    "accuracy": rows["chip model after 1 day"]["accuracy"]}
    assert sum(map(sum, rows["chip model after 1 day"]["confusion"])) == 6
    assert report["mvms_per_digit"] == 81 and all(code >= 1 for code in report["threshold_codes"])
    assert report["settings"]["epochs"] == 4 and report["settings"]["aware_epochs"] == 3
    assert report["parts"] == [{"test_digits": 3, "chip_digits": 3}, {"test_digits": 357, "chip_digits": 3}]
    out = capsys.readouterr().out
    assert "chip model after 1 day" in out and "target 98.5%" in out and str(tmp_path / "cnn.png") in out


def test_rbm_task_recovers_flipped_and_occluded_digits(tmp_path, capsys):
    assert main(["demo", "--task", "rbm", "--epochs", "60", "--samples", "20", "--steps", "10",
                 "--out", str(tmp_path)]) == 0
    files = _written(tmp_path)
    assert sorted(files) == ["rbm_recovery.png", "report.json"]
    assert files["rbm_recovery.png"][:8] == PNG
    report = json.loads(files["report.json"])
    assert report["task"] == "rbm" and report["config"] == REFERENCE.name
    assert (report["samples"], report["steps"], report["burn_in"], report["flip_fraction"]) == (20, 10, 2, 0.2)
    assert report["relaxation"]["age_s"] == 86400
    rows = {(row["corruption"], row["model"]): row for row in report["results"]}
    assert set(rows) == {(c, m) for c in ("flipped", "occluded") for m in ("chip model", "float")}
    # 20 % of 64 pixels flipped is 13 a digit; a quarter occluded hides 16, some of them background already.
    assert rows["flipped", "chip model"]["errors_before"] == 20 * 13
    assert 0 < rows["occluded", "chip model"]["errors_before"] <= 20 * 16
    for row in rows.values():
        assert 0.1 < row["error_reduction"] < 1 and row["errors_after"] < row["errors_before"]
    assert report["clean_accuracy"]["mlp"] > 0.6
    assert report["rbm"]["hidden"] <= REFERENCE.neurons - 1 and report["chip_mvms"] > 0
    # Two parts, one process each on the chip model, each with its own LFSR seeds (seed, seed + 2).
    assert report["parts"] == [{"digits": 10, "lfsr_seed": 1}, {"digits": 10, "lfsr_seed": 3}]
    assert "RBM recovery: 20 held-out digits" in capsys.readouterr().out


@pytest.mark.parametrize("argv, says", [
    (["--task", "cnn", "--steps", "4"], "--steps is for --task mlp (time steps) and rbm (Gibbs steps)"),
    (["--task", "cnn", "--transport", "cosim"], "--transport cosim is for --task mlp; cnn runs on the golden model"),
    (["--task", "rbm", "--transport", "serial"], "--transport serial is for --task mlp; rbm runs on the golden"),
    (["--task", "cnn", "--neuron-noise"], "--neuron-noise is for --task mlp, not cnn (cnn always runs with neuron"),
    (["--task", "rbm", "--simulator", "icarus"], "--simulator is for --task mlp, not rbm"),
    (["--task", "rbm", "--port", "/dev/ttyUSB0"], "--port is for --task mlp, not rbm"),
    (["--task", "cnn", "--network", "README.md"], "--network is for --task mlp, not cnn"),
    (["--task", "cnn", "--config", "reference"], "--config reference: the CNN does not fit the reference chip: "
                                                 "layer conv 2 does not fit the cores left (1 of 2)"),
    (["--task", "cnn", "--config", "reference-lite"], "the reference-lite chip has no MVM sequencer"),
    (["--task", "rbm", "--config", "reference-lite"], "the reference-lite chip has no MVM sequencer"),
    (["--task", "rbm", "--steps", "1"], "--steps 1: a recovery counts samples after burn-in: at least 2 Gibbs"),
    (["--task", "svm"], "argument --task: invalid choice: 'svm'"),
    (["--task", "rbm", "--training-seed", "3"], "--training-seed is for --task cnn; rbm's --seed seeds its data"),
    (["--training-seed", "3"], "--training-seed is for --task cnn; mlp's --seed seeds its data split and training"),
])
def test_arguments_a_task_does_not_take_are_refused_before_any_work(tmp_path, capsys, argv, says):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit:
        main(["demo", *argv, "--out", str(out)])
    stdout, err = capsys.readouterr()
    assert exit.value.code == 2 and stdout == ""
    assert err.startswith("rram-cim demo: ") and err.count("\n") == 1 and says in err, err
    assert not out.exists()                                       # nothing trained, nothing written


def _defaults(*argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default=REFERENCE.name)    # as `rram-cim`'s main adds it
    add_arguments(parser)
    args = parser.parse_args(list(argv))
    _resolve_defaults(args)
    return args


def test_mlp_stays_the_default_task_with_its_own_defaults():
    args = _defaults()
    assert (args.task, args.transport, args.config, args.steps, args.epochs, args.samples, str(args.out)) == (
        "mlp", "cosim", "reference", 16, 60, 360, "out/demo")


def test_each_task_has_its_own_chip_and_folder_unless_told():
    assert (_defaults("--task", "cnn").config, str(_defaults("--task", "cnn").out)) == ("neurram-like", "out/demo-cnn")
    assert (_defaults("--task", "rbm").config, str(_defaults("--task", "rbm").out)) == ("reference", "out/demo-rbm")
    assert _defaults("--task", "cnn", "--config", "neurram").config == "neurram"


def test_cnn_seeds_and_epochs_as_the_bench_takes_them():
    from rram_cim.demo import _cnn_settings
    default = _cnn_settings(_defaults("--task", "cnn"))
    assert (default.seed, default.epochs, default.aware_epochs) == (0, 60, 40)     # bench cnn's training
    chosen = _cnn_settings(_defaults("--task", "cnn", "--training-seed", "5", "--epochs", "9"))
    assert (chosen.seed, chosen.epochs, chosen.aware_epochs) == (5, 9, 6)
