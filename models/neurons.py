"""Voltage-mode integrate-and-fire neurons (NeuRRAM style) with SPIRIT's positive and negative spikes.

Per time step each column's bit line settles to the conductance-weighted average of its word-line
voltages, V_col = sum_i G_ij V_i / sum_i G_ij (NeuRRAM's voltage-mode sensing, Wan et al., Nature 608,
2022). A sampling capacitor takes V_col and shares its charge with the integration capacitor, so the
membrane moves by (C_sample / C_int) * V_in. Two comparators fire a +1 spike above the positive
threshold and a -1 spike below the negative one (SPIRIT, Valentian et al., IEDM 2019); during the
refractory period the neuron keeps integrating but cannot fire (SPIRIT's third specification). After
a spike an IF or LIF membrane goes back to zero, or loses the threshold it crossed (reset by
subtraction, as snnTorch's and Sinabs's neurons do); ADC mode always subtracts and has no refractory
period, so its spike count digitizes the input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..protocol import NeuronMode, NeuronReset
from .device import ModelInputError

__all__ = ["NeuronMode", "NeuronReset", "NeuronParams", "NeuronBank", "column_voltages", "differential_inputs"]

BOLTZMANN = 1.380649e-23


@dataclass(frozen=True)
class NeuronParams:
    #: Integration capacitor: SPIRIT's neurons are built around a 200 fF MOM capacitor.
    c_int_ff: float = 200.0
    #: Sampling capacitor (model assumption: a tenth of C_int, so one sample moves the membrane by
    #: V_in / 10 and a spike needs several input events, as in SPIRIT's rate code).
    c_sample_ff: float = 20.0
    #: Thresholds on the membrane voltage, volts.
    v_threshold_pos: float = 0.1
    v_threshold_neg: float = 0.1
    refractory_steps: int = 0
    #: Fraction of the membrane voltage lost per step in LIF mode.
    leak: float = 0.0
    mode: NeuronMode = NeuronMode.IF
    #: IF and LIF: what the membrane does after a spike (ADC mode always subtracts).
    reset: NeuronReset = NeuronReset.ZERO
    #: Comparator offset spread across neurons, volts (device-to-device; a few mV is typical of
    #: uncalibrated CMOS comparators - model assumption).
    offset_sigma_v: float = 0.002
    #: Temperature for the kT/C sampling noise on the integration capacitor.
    temperature_k: float = 300.0
    noise: bool = True

    def __post_init__(self):
        if self.c_int_ff <= 0 or self.c_sample_ff <= 0:
            raise ModelInputError("capacitances must be positive")
        if self.v_threshold_pos <= 0 or self.v_threshold_neg <= 0:
            raise ModelInputError("thresholds are magnitudes and must be positive")
        if self.refractory_steps < 0 or not 0 <= self.leak < 1:
            raise ModelInputError("refractory_steps must be >= 0 and leak in [0, 1)")

    @property
    def gain(self) -> float:
        return self.c_sample_ff / (self.c_sample_ff + self.c_int_ff)

    @property
    def noise_sigma_v(self) -> float:
        """kT/C noise of the integration capacitor, volts RMS (~0.14 mV for 200 fF at 300 K)."""
        return float(np.sqrt(BOLTZMANN * self.temperature_k / (self.c_int_ff * 1e-15))) if self.noise else 0.0


def conversion_weights(bits: int, sar: bool) -> list[int]:
    """The weight of each conversion step: 2^b for bit b, most significant first (SAR), or 2^bits - 1
    steps of one threshold (partial-reset counting)."""
    return [1 << b for b in reversed(range(bits))] if sar else [1] * ((1 << bits) - 1)


def column_voltages(g_us: np.ndarray, v_rows: np.ndarray) -> np.ndarray:
    """Settled bit-line voltages: the conductance-weighted average of the word-line voltages."""
    g_us = np.asarray(g_us, dtype=float)
    v_rows = np.asarray(v_rows, dtype=float)
    if g_us.ndim != 2 or v_rows.shape[-1] != g_us.shape[0]:
        raise ModelInputError(f"inputs {v_rows.shape} do not match a {g_us.shape} conductance array")
    if np.any(g_us < 0):
        raise ModelInputError("conductances must be non-negative")
    total = g_us.sum(axis=0)
    if np.any(total <= 0):
        raise ModelInputError("a column with no conductance has no settled voltage")
    return (v_rows @ g_us) / total


def differential_inputs(v_columns: np.ndarray) -> np.ndarray:
    """Neuron inputs of the differential mapping: column 2k carries G+, column 2k+1 carries G-."""
    v_columns = np.asarray(v_columns)
    if v_columns.shape[-1] % 2:
        raise ModelInputError("differential mapping needs an even number of columns")
    return v_columns[..., 0::2] - v_columns[..., 1::2]


class NeuronBank:
    """`n` neurons stepping together; randomness (offsets, noise) only through `rng`."""

    def __init__(self, n: int, params: NeuronParams, rng: np.random.Generator):
        if n < 1:
            raise ModelInputError("a neuron bank needs at least one neuron")
        self.n = n
        self.params = params
        self.rng = rng
        self.offset_v = rng.normal(0.0, params.offset_sigma_v, n) if params.noise else np.zeros(n)
        #: Each comparator's offset trim, volts (set by calibration; `AnalogMacro.set_trims`).
        self.trim_v = np.zeros(n)
        self.v_mem = np.zeros(n)
        self.refractory = np.zeros(n, dtype=np.int64)
        self.spike_count = np.zeros(n, dtype=np.int64)

    def reset(self):
        self.v_mem[:] = 0
        self.refractory[:] = 0
        self.spike_count[:] = 0

    def step(self, v_in: np.ndarray) -> np.ndarray:
        """Integrate one sample per neuron; return spikes in {-1, 0, +1}."""
        self.integrate(v_in)
        return self.fire()

    def integrate(self, v_in: np.ndarray) -> None:
        """Leak (LIF), then take one sample per neuron onto the membrane (the chip's integrate strobe)."""
        p = self.params
        v_in = np.asarray(v_in, dtype=float)
        if v_in.shape != (self.n,):
            raise ModelInputError(f"neuron input has shape {v_in.shape}, the bank has {self.n} neurons")
        if p.mode is NeuronMode.LIF:
            self.v_mem *= 1.0 - p.leak
        self.v_mem += p.gain * v_in
        if p.noise:
            self.v_mem += self.rng.normal(0.0, p.noise_sigma_v, self.n)

    def fire(self) -> np.ndarray:
        """Compare against the thresholds (the chip's fire strobe); return spikes in {-1, 0, +1}."""
        p = self.params
        compared = self.v_mem + self.offset_v + self.trim_v
        may_fire = self.refractory == 0
        up = may_fire & (compared >= p.v_threshold_pos)
        down = may_fire & (compared <= -p.v_threshold_neg)
        spikes = up.astype(np.int8) - down.astype(np.int8)
        fired = spikes != 0
        crossed = spikes * np.where(up, p.v_threshold_pos, p.v_threshold_neg)
        if p.mode is NeuronMode.ADC:
            self.v_mem -= crossed
        else:
            if p.reset is NeuronReset.SUBTRACT:
                self.v_mem -= crossed
            else:
                self.v_mem[fired] = 0.0
            self.refractory = np.where(fired, p.refractory_steps, np.maximum(self.refractory - 1, 0))
        self.spike_count += np.abs(spikes)
        return spikes

    def convert(self, bits: int, sar: bool) -> tuple[np.ndarray, int]:
        """A multi-bit output per neuron from its membrane (models/mvm.py): partial-reset counting (up to
        2^bits - 1 comparator steps) or successive approximation (`bits` steps, 2^b thresholds at bit b);
        each decision sees the comparator offset; the membrane keeps the remainder. Returns the signed
        counts and the number of steps."""
        weights = conversion_weights(bits, sar)
        counts = np.zeros(self.n, dtype=np.int64)
        for weight in weights:
            up, down = self.convert_step(weight)
            counts += weight * (up.astype(np.int64) - down.astype(np.int64))
        return counts, len(weights)

    def convert_step(self, weight: int) -> tuple[np.ndarray, np.ndarray]:
        """One conversion decision per neuron against +-weight thresholds: the flags, and the membranes that
        decided lose (or gain back) weight thresholds."""
        p = self.params
        compared = self.v_mem + self.offset_v + self.trim_v
        up = compared >= weight * p.v_threshold_pos
        down = ~up & (compared <= -weight * p.v_threshold_neg)
        self.v_mem -= weight * (up * p.v_threshold_pos - down * p.v_threshold_neg)
        return up, down

    def run(self, v_inputs: np.ndarray) -> np.ndarray:
        """Step through (steps, n) inputs; return the (steps, n) spike raster."""
        v_inputs = np.asarray(v_inputs, dtype=float)
        if v_inputs.ndim != 2:
            raise ModelInputError("run() takes a (steps, neurons) array of inputs")
        return np.stack([self.step(row) for row in v_inputs]) if len(v_inputs) else np.zeros((0, self.n), np.int8)
