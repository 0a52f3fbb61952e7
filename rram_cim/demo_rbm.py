"""RBM digit recovery on the chip's bidirectional MVM, as `rram-cim demo --task rbm` and `rram-cim bench rbm`
run it (docs/rbm.md).

1. Trains an RBM (64 binarized pixels + 10 one-hot labels) on scikit-learn's digits by contrastive
   divergence, noise-aware: W rounded to the cells' 8 levels and each weight's conductance spread after P&V
   and a day of relaxation (`host.training.device_spread_us`) drawn in every step. Hidden units as the
   cores allow: `hidden` (default a core's neurons less the balance pair) and one fewer each time the
   trained W cannot be balanced on the cores (`host.rbm.train_fitting`).
2. Maps W onto the chip's cores for both MVM directions (`host.rbm.map_rbm`), programs them through the
   golden model's P&V (the MLP demo's recipes), lets them relax a day and calibrates every neuron's
   comparator offset (`Chip.calibrate`). The neurons' comparator offsets and kT/C noise are on.
3. Corrupts the held-out digits twice: 20 % of the pixels flipped; one 4x4 quadrant (a quarter) occluded.
   Recovers both by Gibbs sampling: on the chip (forward MVM visible -> hidden, backward MVM hidden ->
   visible on the same cells, the LFSR stochastic neuron deciding on the chip wherever a direction's outputs
   come from one core, else in the host: docs/rbm.md) and with the float
   reference (the float W, exact products, the same neuron and LFSR draws).
4. Reports the pixel error reduction against the corrupted input (NeuRRAM: 70 %, Wan et al., Nature 608,
   2022), the label units' classification of the recovered and of the clean digits, and the cost.

What both commands share lives here: the run (`evaluate`), its summary and the grid plot; each command
keeps its own arguments.
"""

from __future__ import annotations

import pathlib
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np

from .config import CONFIGS, REFERENCE, ChipConfig
from .progress import Bar

__all__ = ["DEFAULT_CONFIG", "OUTPUTS", "PLOT", "PARTS", "FLIP_FRACTION", "NEURRAM_REDUCTION", "Recovery",
           "check_fits", "evaluate", "print_summary", "recover_in_parts", "training_set_prior", "gibbs_step_cost"]

DEFAULT_CONFIG = REFERENCE.name
PLOT = "rbm_recovery.png"
OUTPUTS = ("report.json", PLOT)
#: The flip fraction the issue asks for, and NeuRRAM's recovery figure to compare with.
FLIP_FRACTION = 0.2
NEURRAM_REDUCTION = 0.70
#: Gibbs steps (and burn-in) that classify the clean digits: every pixel clamped, only the labels sample.
CLEAN_STEPS, CLEAN_BURN_IN = 10, 2
#: The training-set prior's chance that a known pixel differs from a training image that explains it.
KNOWN_MISMATCH = 0.05
#: A day: the relaxation the training's noise assumes (`device_spread_us`'s default age).
AGE_S = 86400.0
#: Digits shown in the grid plot.
SHOWN = 10


@dataclass(frozen=True)
class Recovery:
    """One run's settings: held-out digits recovered, Gibbs steps and burn-in, most hidden units to try
    (None: a core's neurons less the balance pair), training epochs, and the seed of training, corruption,
    chip and LFSRs."""
    samples: int = 360
    steps: int = 50
    burn_in: int = 10
    hidden: int | None = None
    epochs: int = 200
    seed: int = 0


def check_fits(config: ChipConfig) -> str | None:
    """None if an RBM of the digits' 74 visible units can be sampled on `config`, else why not (one line)."""
    from .host.rbm import VISIBLE
    if not config.mvm:
        return f"the {config.name} chip has no MVM sequencer (the RBM samples with MVMs); use {DEFAULT_CONFIG}"
    rows_needed = -(-VISIBLE // (config.rows - 1))
    if rows_needed > config.cores:
        return (f"the RBM's {VISIBLE} visible units need {rows_needed} cores of {config.rows - 1} usable rows; "
                f"the {config.name} chip has {config.cores}")
    return None


def _bar(label: str, total: int, stream):
    bar = Bar(label, total, stream=stream)
    return lambda done, *_: bar.update(done)


def run_recoveries(sampler, cases, test, labels, run: Recovery, label: str, mlp, stream) -> dict:
    """Recover every corruption with `sampler`; the clean digits' classification by the label units too.
    `mlp` (the project's float network, trained on binarized digits) classifies corrupted and recovered."""
    from .host import rbm as R
    out = {}
    for name, corrupted, options in cases:
        started = time.perf_counter()
        recovery = R.recover(sampler, corrupted, steps=run.steps, burn_in=run.burn_in, seed=run.seed,
                             progress=_bar(f"{label}: {name}", run.steps, stream), **options)
        out[name] = {"recovery": recovery, "wall_s": time.perf_counter() - started,
                     "errors_before": R.pixel_errors(corrupted, test),
                     "errors_after": R.pixel_errors(recovery.images, test),
                     "error_reduction": R.error_reduction(corrupted, recovery.images, test),
                     "accuracy_recovered": float(np.mean(recovery.labels == labels)),
                     "mlp_accuracy_corrupted": float(np.mean(mlp.predict(corrupted.astype(float)) == labels)),
                     "mlp_accuracy_recovered": float(np.mean(mlp.predict(recovery.images.astype(float)) == labels))}
    started = time.perf_counter()
    clean = R.recover(sampler, test, known=np.ones(test.shape, bool), steps=CLEAN_STEPS, burn_in=CLEAN_BURN_IN,
                      seed=run.seed, progress=_bar(f"{label}: clean", CLEAN_STEPS, stream))
    out["clean"] = {"accuracy": float(np.mean(clean.labels == labels)), "digits": len(labels),
                    "wall_s": time.perf_counter() - started}
    return out


#: The held-out digits are recovered in this many parts, one process each on the chip model (a part per
#: core of a two-core machine): its MVMs are computed sample by sample, ~8 ms of one core per Gibbs step
#: and digit. Each part's LFSRs are seeded from the run's seed and the part's number.
PARTS = 2
#: What `_recover_part` runs, set before the processes fork (they inherit it).
_JOB: dict = {}


def _parts(samples: int) -> list[tuple[int, int]]:
    split = -(-samples // PARTS)
    return [(0, samples)] if samples < PARTS else [(0, split), (split, samples)]


def recover_in_parts(make_sampler, cases, test, labels, run: Recovery, label: str, mlp, stream,
                     processes: bool) -> dict:
    """`run_recoveries` over the digits in `_parts`, each with its own sampler (`make_sampler()`) and LFSR
    seeds (run.seed + 2k for part k: a part's hidden and visible banks take seed and seed + 1), merged.
    With `processes`, one process per part, forked after the chip was programmed: each part's chip has
    the same cells and offsets, its neurons' kT/C noise drawn afresh. The first part shows its progress."""
    import multiprocessing
    import os
    parts = _parts(len(test))
    _JOB.update(make_sampler=make_sampler, cases=cases, test=test, labels=labels, run=run, label=label, mlp=mlp,
                stream=stream, parts=parts)
    try:
        if processes and len(parts) > 1:
            with multiprocessing.get_context("fork").Pool(min(len(parts), os.cpu_count() or 1)) as pool:
                results = pool.map(_recover_part, range(len(parts)))
        else:
            results = [_recover_part(k) for k in range(len(parts))]
    finally:
        _JOB.clear()
    return _merged(results)


def _recover_part(k: int) -> dict:
    import os
    from dataclasses import replace
    job = _JOB
    start, stop = job["parts"][k]
    cases = [(name, corrupted[start:stop], {key: (value[start:stop] if key == "known" else value)
                                            for key, value in options.items()})
             for name, corrupted, options in job["cases"]]
    sampler = job["make_sampler"]()
    with open(os.devnull, "w") as quiet:
        out = run_recoveries(sampler, cases, job["test"][start:stop], job["labels"][start:stop],
                             replace(job["run"], seed=job["run"].seed + 2 * k), job["label"], job["mlp"],
                             job["stream"] if k == 0 else quiet)
    out["mvms"] = getattr(sampler, "mvms", 0)
    return out


def _merged(results: list[dict]) -> dict:
    """The parts' recoveries as one: pixel errors added, accuracies over all digits, the longest wall time."""
    from .host import rbm as R

    def weighted(rows, key):
        sizes = [len(r["recovery"].labels) if "recovery" in r else r["digits"] for r in rows]
        return float(sum(r[key] * n for r, n in zip(rows, sizes)) / sum(sizes))
    out = {"mvms": sum(r["mvms"] for r in results)}
    for name in results[0]:
        rows = [r[name] for r in results]
        if name == "mvms":
            continue
        if name == "clean":
            out[name] = {"accuracy": weighted(rows, "accuracy"), "digits": sum(r["digits"] for r in rows),
                         "wall_s": max(r["wall_s"] for r in rows)}
            continue
        before, after = sum(r["errors_before"] for r in rows), sum(r["errors_after"] for r in rows)
        recovery = R.Recovery(*(np.concatenate([getattr(r["recovery"], field) for r in rows])
                                for field in ("images", "labels", "pixel_mean")))
        out[name] = {"recovery": recovery, "wall_s": max(r["wall_s"] for r in rows), "errors_before": before,
                     "errors_after": after, "error_reduction": float(1 - after / before) if before else 0.0,
                     **{key: weighted(rows, key) for key in ("accuracy_recovered", "mlp_accuracy_corrupted",
                                                             "mlp_accuracy_recovered")}}
    return out


def training_set_prior(train_images, corrupted, known, flip_fraction: float | None) -> np.ndarray:
    """A reference without the RBM: each pixel's posterior marginal when the prior is the training images
    themselves (every one equally likely) and the corruption is what the recovery assumes (independent
    flips at `flip_fraction`), thresholded at 1/2; for occlusion the `known` pixels are taken to differ
    from the nearest training images with probability KNOWN_MISMATCH (no test digit equals a training
    one exactly). What the data allows without a model."""
    train_images = np.asarray(train_images, dtype=float)
    if flip_fraction is not None:
        agree = corrupted @ train_images.T + (1 - corrupted) @ (1 - train_images).T
        log_likelihood = np.log((1 - flip_fraction) / flip_fraction) * agree
    else:
        disagree = ((corrupted * known) @ (1 - train_images).T + ((1 - corrupted) * known) @ train_images.T)
        log_likelihood = -np.log((1 - KNOWN_MISMATCH) / KNOWN_MISMATCH) * disagree
    weights = np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))
    marginal = weights @ train_images / weights.sum(axis=1, keepdims=True)
    images = (marginal > 0.5).astype(np.int64)
    return images if known is None else np.where(known, corrupted, images)


def gibbs_step_cost(chip, mapping, config: ChipConfig) -> dict:
    """What one Gibbs step (for one digit) asks of the chip: each tile's forward and backward MVM, their
    samples and conversion steps as the model counts them, and the cycles the chip's MVM sequencer takes
    for them by docs/mvm.md's formula (measured exact in co-simulation by bench/mvm.py)."""
    total = {"mvms": 0, "samples": 0, "conversion_steps": 0, "cycles": 0}
    for direction, threshold in (("forward", mapping.threshold_forward), ("backward", mapping.threshold_backward)):
        lines = config.rows if direction == "forward" else config.neurons
        phases = 1 if direction == "forward" else -(-config.rows // config.neurons)
        for tile in mapping.tiled.tiles:
            x = np.full(tile.mapping.sizes(direction)[1], mapping.pulses, dtype=np.int64)
            tile.mapping.run(chip, x, direction, mapping.in_bits, mapping.out_bits, "sar", threshold)
            counters = chip.mvm_counters()
            total["mvms"] += 1
            total["samples"] += counters["mvm_samples"]
            total["conversion_steps"] += counters["mvm_steps"]
            total["cycles"] += (1 + counters["mvm_samples"] * (3 * lines + 2) + 3 * counters["mvm_steps"]
                                + phases * (2 + 2 * config.neurons))
    total["chip_time_us"] = total["cycles"] / config.sys_clk_hz * 1e6
    return total


def evaluate(config: ChipConfig, run: Recovery, stream=None) -> tuple[dict, list]:
    """Train, map, program, corrupt and recover (the module docstring), with a progress bar per phase on
    `stream` (default stdout). Returns the report and the grid plot's rows (`save_grid`)."""
    from .host import rbm as R
    from .host.chip import Chip, ModelTransport
    from .host.recipes import HOLDING, level_recipes
    from .host.training import Digits, device_spread_us, load_digits, train
    from .models.recipes import LEVELS
    stream = stream or sys.stdout

    def log(text: str) -> None:
        print(text, file=stream, flush=True)
    walls = {}
    started = time.perf_counter()
    level_codes = np.array(LEVELS)
    recipes = level_recipes(config, level_codes, **HOLDING)
    spread = device_spread_us(config, level_codes, recipes, AGE_S, seed=run.seed)
    step_us = float(level_codes[1] - level_codes[0]) * config.us_per_adc_lsb
    data = load_digits(run.seed)
    hidden = config.neurons - 1 if run.hidden is None else run.hidden
    settings = R.RBMSettings(hidden=hidden, epochs=run.epochs, seed=run.seed)
    t = time.perf_counter()
    neuron = R.StochasticNeuron()
    rbm, mapping, refused = R.train_fitting(R.visible_units(data.train_x, data.train_y), settings, level_codes,
                                            config, spread, step_us, neuron,
                                            progress=_bar("training (CD, noise-aware)", settings.epochs, stream))
    settings = rbm.settings
    walls["training_s"] = time.perf_counter() - t
    if refused:
        log(f"hidden units that did not fit the cores: {refused}; {rbm.hidden} do")
    # The project's MLP (host/training.py, its float network) trained on the binarized pixels, as a second
    # classifier of the recovered images, independent of the RBM.
    t = time.perf_counter()
    binary = Digits(R.binarize(data.train_x).astype(float), data.train_y, R.binarize(data.test_x).astype(float),
                    data.test_y)
    mlp, _ = train(config, binary, level_codes * config.us_per_adc_lsb)
    walls["mlp_training_s"] = time.perf_counter() - t
    log(f"W {rbm.hidden}x{R.VISIBLE} on cores {mapping.tiled.cores} ({mapping.tiled.row_chunks} row chunks); "
        f"thresholds {mapping.threshold_forward} / {mapping.threshold_backward} codes; "
        f"{mapping.lsb_per_unit_forward:.2f} / {mapping.lsb_per_unit_backward:.2f} LSB per unit")

    samples = min(run.samples, len(data.test_y))
    test = R.binarize(data.test_x[:samples])
    labels = data.test_y[:samples]
    rng = np.random.default_rng(run.seed)
    flipped = R.flip_pixels(test, FLIP_FRACTION, rng)
    occluded, known = R.occlude_quarter(test, rng)
    cases = [("flipped", flipped, {"flip_fraction": FLIP_FRACTION}), ("occluded", occluded, {"known": known})]

    floating = recover_in_parts(lambda: R.FloatSampler(rbm, mapping.lsb_per_unit_forward,
                                                       mapping.lsb_per_unit_backward),
                                cases, test, labels, run, "float", mlp, stream, processes=False)

    t = time.perf_counter()
    chip = Chip(ModelTransport(config, seed=run.seed, neuron_noise=True), config)
    programmed = mapping.tiled.program(chip, recipes)
    chip.relax(AGE_S)
    calibrations = {core: chip.calibrate(core, seed=run.seed) for core in mapping.tiled.cores}
    walls["program_calibrate_s"] = time.perf_counter() - t
    log(f"programmed cores {mapping.tiled.cores}, relaxed {AGE_S / 86400:g} day, offsets calibrated "
        f"({walls['program_calibrate_s']:.1f} s)")
    cost = gibbs_step_cost(chip, mapping, config)
    if len(_parts(samples)) > 1:
        log(f"recovering on the chip model in {len(_parts(samples))} processes (digits "
            + " and ".join(f"{a + 1}-{b}" for a, b in _parts(samples)) + "); the bars are the first's")
    on_chip = recover_in_parts(lambda: R.ChipSampler(chip, mapping, rbm), cases, test, labels, run, "chip", mlp,
                               stream, processes=True)
    walls["total_s"] = time.perf_counter() - started

    mlp_clean = float(np.mean(mlp.predict(test.astype(float)) == labels))
    train_images = R.binarize(data.train_x)
    for name, corrupted, options in cases:
        images = training_set_prior(train_images, corrupted, options.get("known"), options.get("flip_fraction"))
        floating[name]["prior"] = {"errors_after": R.pixel_errors(images, test),
                                   "error_reduction": R.error_reduction(corrupted, images, test),
                                   "mlp_accuracy_recovered": float(np.mean(mlp.predict(images.astype(float))
                                                                           == labels))}
    rows = []
    for name in ("flipped", "occluded"):
        for label, result in (("chip model", on_chip), ("float", floating)):
            r = result[name]
            rows.append({"corruption": name, "model": label, "errors_before": r["errors_before"],
                         "errors_after": r["errors_after"], "error_reduction": r["error_reduction"],
                         "accuracy_recovered": r["accuracy_recovered"],
                         "mlp_accuracy_corrupted": r["mlp_accuracy_corrupted"],
                         "mlp_accuracy_recovered": r["mlp_accuracy_recovered"], "wall_s": r["wall_s"]})
    shown = min(SHOWN, samples)
    grid = [("flipped", flipped[:shown]), ("chip", on_chip["flipped"]["recovery"].images[:shown]),
            ("float", floating["flipped"]["recovery"].images[:shown]),
            ("occluded", occluded[:shown]), ("chip", on_chip["occluded"]["recovery"].images[:shown]),
            ("float", floating["occluded"]["recovery"].images[:shown]), ("original", test[:shown])]
    report = {
        "config": config.name, "seed": run.seed, "samples": samples, "steps": run.steps,
        "burn_in": run.burn_in, "flip_fraction": FLIP_FRACTION, "neurram_error_reduction": NEURRAM_REDUCTION,
        "relaxation": {"age_s": AGE_S, "setting": f"chip programmed, relaxed {AGE_S / 86400:g} day, then "
                                                  f"offsets calibrated, before every recovery"},
        "rbm": {"visible": R.VISIBLE, "hidden": rbm.hidden, "settings": asdict(settings),
                "reconstruction_error_last_epoch": rbm.history[-1], "hidden_refused": refused},
        "mapping": {"cores": list(mapping.tiled.cores), "row_chunks": mapping.tiled.row_chunks,
                    "level_codes": [int(c) for c in level_codes], "in_bits": mapping.in_bits,
                    "out_bits": mapping.out_bits, "threshold_forward": mapping.threshold_forward,
                    "threshold_backward": mapping.threshold_backward,
                    "lsb_per_unit_forward": mapping.lsb_per_unit_forward,
                    "lsb_per_unit_backward": mapping.lsb_per_unit_backward,
                    "temperature_forward": neuron.sigma_lsb / R.LOGISTIC_SIGMA / mapping.lsb_per_unit_forward,
                    "temperature_backward": neuron.sigma_lsb / R.LOGISTIC_SIGMA / mapping.lsb_per_unit_backward},
        "neuron": {"draws": neuron.draws, "magnitude_lsb": neuron.magnitude_lsb, "sigma_lsb": neuron.sigma_lsb,
                   "lfsr_taps": list(R.LFSR32_TAPS)},
        "programming": [{"core": p.core, "cells_failed": p.cells_failed} for p in programmed],
        "calibration": {str(core): {"bias_rms_before": float(np.sqrt(np.mean(c.bias_before ** 2))),
                                    "bias_rms_after": float(np.sqrt(np.mean(c.bias_after ** 2)))}
                        for core, c in calibrations.items()},
        "chip_mvms": on_chip["mvms"],
        "parts": [{"digits": b - a, "lfsr_seed": run.seed + 2 * k} for k, (a, b) in enumerate(_parts(samples))],
        "results": rows,
        "training_set_prior": {name: floating[name]["prior"] for name in ("flipped", "occluded")},
        "clean_accuracy": {"chip model": on_chip["clean"]["accuracy"], "float": floating["clean"]["accuracy"],
                           "mlp": mlp_clean},
        "chip_cost_per_gibbs_step": cost,
        "wall_s": walls,
    }
    return report, grid


def save_grid(folder: pathlib.Path, grid: list) -> pathlib.Path:
    """rbm_recovery.png in `folder` (rows: flipped, recovered on the chip, in float; occluded, chip, float;
    original)."""
    from .host.rbm import save_grid as save
    path = folder / PLOT
    save(path, grid, columns=len(grid[0][1]))
    return path


def print_summary(report: dict, out: pathlib.Path, grid: pathlib.Path, stream=None) -> None:
    stream = stream or sys.stdout
    config = CONFIGS[report["config"]]

    def say(text):
        print(text, file=stream)
    say(f"RBM recovery: {report['samples']} held-out digits, {report['rbm']['visible']} visible x "
        f"{report['rbm']['hidden']} hidden, {report['steps']} Gibbs steps ({report['burn_in']} burn-in); "
        f"NeuRRAM: {NEURRAM_REDUCTION:.0%} error reduction")
    say(f"{'corruption':<10} {'model':<11} {'errors before':>13} {'after':>6} {'reduction':>9} "
        f"{'labels':>8} {'MLP corrupted':>13} {'MLP recovered':>13} {'wall s':>7}")
    for r in report["results"]:
        say(f"{r['corruption']:<10} {r['model']:<11} {r['errors_before']:>13} {r['errors_after']:>6} "
            f"{r['error_reduction']:>9.1%} {r['accuracy_recovered']:>8.1%} {r['mlp_accuracy_corrupted']:>13.1%} "
            f"{r['mlp_accuracy_recovered']:>13.1%} {r['wall_s']:>7.1f}")
    for name, prior in report["training_set_prior"].items():
        say(f"{name}: no RBM, the training images as the prior (what the data allows): "
            f"{prior['error_reduction']:.1%} error reduction, MLP {prior['mlp_accuracy_recovered']:.1%}")
    clean = report["clean_accuracy"]
    say(f"clean digits classified by the label units: chip model {clean['chip model']:.1%}, "
        f"float {clean['float']:.1%}; by the MLP {clean['mlp']:.1%}")
    walls, cost = report["wall_s"], report["chip_cost_per_gibbs_step"]
    say(f"report: {out / 'report.json'}; grid: {grid}; {walls['total_s']:.0f} s in all "
        f"(training {walls['training_s']:.1f} s, programming and calibration {walls['program_calibrate_s']:.1f} s, "
        f"{report['chip_mvms']} chip MVMs)")
    say(f"chip per Gibbs step and digit: {cost['mvms']} MVMs, {cost['samples']} samples, {cost['conversion_steps']} "
        f"conversion steps, {cost['cycles']} cycles = {cost['chip_time_us']:.0f} us at "
        f"{config.sys_clk_hz / 1e6:.0f} MHz (docs/mvm.md's cycle formula)")
