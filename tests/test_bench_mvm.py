"""bench/mvm.py without co-simulation: the table's columns, the CSV and JSON and both plots, the cycle
formula against cycles measured on the co-simulated sequencer, and energies that grow with the bits."""

import csv
import json
import sys

import pytest

from rram_cim.cli import BENCH_DIR, main

sys.path.insert(0, str(BENCH_DIR))
import mvm as bench                      # noqa: E402  (bench/ is scripts, not a package)

#: mvm_cycles read back from the chip in Verilator co-simulation (commit 747cefa, seed 1): the same for any
#: inputs and cells; (direction, in bits, out bits, conversion) -> cycles.
MEASURED_CYCLES = {("forward", 1, 1, "count"): 264, ("forward", 2, 2, "sar"): 655, ("forward", 4, 8, "count"): 3742,
                   ("forward", 4, 8, "sar"): 3001, ("forward", 8, 8, "count"): 50302, ("backward", 1, 1, "sar"): 335,
                   ("backward", 4, 4, "count"): 3163, ("backward", 4, 8, "count"): 4603,
                   ("backward", 8, 4, "sar"): 50137, ("backward", 8, 8, "sar"): 50161}


@pytest.mark.parametrize("point", sorted(MEASURED_CYCLES))
def test_the_cycle_formula_gives_the_cycles_measured_in_cosimulation(point):
    assert bench.cycles_formula(*point) == MEASURED_CYCLES[point]


def test_the_bench_without_cosimulation_writes_its_table_and_plots(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))          # `bench` hands its script its own argv
    with pytest.raises(SystemExit) as exit:
        main(["bench", "mvm", "--no-cosim", "--trials", "1", "--bits", "1/1,4/4", "--out", str(tmp_path)])
    assert exit.value.code == 0
    printed = capsys.readouterr().out
    assert "cycles from the formula (--no-cosim)" in printed and "cosim=model" in printed
    with open(tmp_path / "mvm.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 2 and list(rows[0]) == list(bench.COLUMNS)
    assert json.loads((tmp_path / "mvm.json").read_text())["points"][0]["cosim_equals_model"] is None
    assert (tmp_path / "mvm_error.png").stat().st_size > 0 and (tmp_path / "mvm_cost.png").stat().st_size > 0
    by = {(r["direction"], r["in_bits"], r["conversion"]): r for r in rows}
    for direction in ("forward", "backward"):
        one, four = by[direction, "1", "count"], by[direction, "4", "count"]
        assert float(four["energy_pj"]) > 5 * float(one["energy_pj"]) and int(four["cycles"]) > 9 * int(one["cycles"])
        assert float(by[direction, "4", "sar"]["conversion_pj"]) < float(four["conversion_pj"])
        parts = sum(float(four[k]) for k in ("array_pj", "integration_pj", "conversion_pj"))
        assert parts == pytest.approx(float(four["energy_pj"]))


def test_bad_bit_pairs_are_refused(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    with pytest.raises(SystemExit):
        main(["bench", "mvm", "--no-cosim", "--bits", "4/9"])
    assert "needs input/output bit pairs from 1 to 8" in capsys.readouterr().err
