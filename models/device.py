"""1T1R HfO2 ReRAM cells, vectorized over a whole array.

A behavioural model at the level the control plane needs: what one programming pulse does to each cell's
conductance, how a read sees it, and how it drifts afterwards. Conductances are in microsiemens (`_us`),
voltages in volts (`v_`), times in seconds (`_s`) unless the name says otherwise.

Physics, in short (sources next to each parameter):
* SET grows the filament until the access transistor's compliance current I_C stops it; the LRS then
  has R ~= V_C / I_C (Ielmini's universal SET relation), so the gate voltage sets the final conductance.
  Below full completion, growth is a voltage-accelerated rate process: tau = tau0 * exp(-(V - V_set)/V0),
  so the top-electrode voltage and the pulse width decide how far a partial SET goes (ISPVA's knob).
* RESET is gradual: the conductance falls exponentially with the source-line overdrive above a threshold.
* Each cell has its own thresholds and transistor (device-to-device), each pulse its own jitter
  (cycle-to-cycle); reads add noise; after programming the conductance relaxes, mostly within an hour.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from .cell_noise import CellNoise, Stream

__all__ = ["DeviceParams", "ReRAMArray", "Stuck", "Shape", "ModelInputError", "HFO2_1T1R"]


class ModelInputError(ValueError):
    """An argument a physical model cannot accept (wrong shape, negative conductance, voltage too high)."""


class Stuck(enum.IntEnum):
    NONE = 0
    HIGH = 1      # stuck-at-LRS: a filament that no RESET dissolves
    LOW = 2       # stuck-at-HRS: a cell that never forms or sets


class Shape(enum.Enum):
    SQUARE = "square"
    TRIANGULAR = "triangular"


@dataclass(frozen=True)
class DeviceParams:
    """HfO2 1T1R cell parameters. Each value cites where its order of magnitude comes from."""

    # -- conductance range ----------------------------------------------------------------------------
    #: Pristine (unformed) cells conduct ~10-100 MOhm: forming is needed before any SET
    #: (Grossi et al., "Fundamental variability limits of filament-based RRAM", IEDM 2016).
    g_pristine_us: float = 0.05
    #: Deepest HRS reachable by RESET, ~1 MOhm (Milo et al., "Multilevel HfO2-based RRAM devices for
    #: low-power neuromorphic networks", APL Materials 7, 081120, 2019: HRS ~ 1-10 uS region).
    g_min_us: float = 1.0
    #: Strongest LRS the cell supports (~7 kOhm), above the 120 uS top level of the same work.
    g_max_us: float = 150.0

    # -- access transistor: compliance current from the gate (word-line) voltage ----------------------
    #: Threshold voltage and gain of the NMOS in saturation, I_C = k (V_G - V_T)^2; 130 nm-class
    #: devices (Milo 2019 program with V_G = 0.8-2 V for I_C of a few to ~100 uA).
    v_t: float = 0.6
    k_ua_per_v2: float = 50.0
    #: Device-to-device spread of V_T (transistor mismatch), volts.
    v_t_sigma: float = 0.01
    #: Universal SET relation R_LRS = V_C / I_C with V_C ~ 0.4 V (Ielmini, "Modeling the universal
    #: set/reset characteristics of bipolar RRAM...", IEEE TED 58(12), 2011).
    v_c: float = 0.4
    #: Cycle-to-cycle spread of the compliance-limited conductance, relative (a few percent in
    #: compliance-controlled SET: Milo 2019, IGVVA levels).
    g_cc_sigma: float = 0.03

    # -- SET kinetics (top-electrode voltage and pulse width) ------------------------------------------
    #: SET threshold on the top electrode and its spreads (HfO2 1T1R SET at ~1-1.5 V on the bit line:
    #: Milo 2019; Ielmini 2011 for the exponential voltage-time dependence).
    v_set: float = 1.2
    v_set_d2d_sigma: float = 0.08
    v_set_c2c_sigma: float = 0.05
    #: tau = tau0 * exp(-(V - V_set) / V0): one decade of speed per ~0.12 V (Ielmini 2011's
    #: voltage-time trade-off of SET, ~ a decade per 100-150 mV).
    set_tau0_s: float = 1e-6
    set_v0: float = 0.05

    # -- forming ---------------------------------------------------------------------------------------
    #: Forming voltage of pristine HfO2 1T1R cells, ~3 V with ~0.2 V spread (Grossi 2016).
    v_form: float = 3.0
    v_form_sigma: float = 0.2

    # -- RESET (source-line voltage) -------------------------------------------------------------------
    #: RESET starts above ~1 V on the source line and deepens gradually with voltage (Milo 2019;
    #: Ielmini 2011: HRS resistance grows exponentially with the RESET stop voltage).
    v_reset: float = 1.0
    reset_v0: float = 0.25
    reset_sigma: float = 0.15

    # -- reads ------------------------------------------------------------------------------------------
    #: Read noise: relative plus absolute floor (NeuRRAM, Wan et al., Nature 608, 2022: read noise of a
    #: few percent of the conductance is what noise-aware training must absorb).
    read_noise_rel: float = 0.02
    read_noise_abs_us: float = 0.1
    #: Reads above 100 mV across the cell risk setting it (SPIRIT, Valentian et al., IEDM 2019 limited
    #: the read drop to 100 mV for that reason); beyond it each read nudges the cell towards LRS.
    v_read_disturb: float = 0.1
    #: Relative conductance increase per read per volt above the limit (model assumption).
    read_disturb_rate_per_v: float = 0.01

    # -- relaxation -------------------------------------------------------------------------------------
    #: After programming, levels drift and broaden, mostly within the first hour (SPIRIT: relaxation
    #: "on a very short time scale (less than one hour)"; Weebit/CEA-Leti P&V material). Drift mean and
    #: spread are relative to the programmed conductance, plus an absolute spread; NeuRRAM's relaxation
    #: broadening is of a few uS.
    relax_mean_rel: float = -0.02
    relax_sigma_rel: float = 0.04
    relax_sigma_abs_us: float = 0.5
    relax_t0_s: float = 1.0
    relax_settle_s: float = 3600.0
    #: Drift after the first hour, as a fraction of the first hour's per decade of time.
    relax_tail_per_decade: float = 0.1
    #: Triangular SET pulses leave a more stable filament (fewer stray oxygen vacancies, Weebit/CEA-Leti
    #: P&V material): their relaxation spread is scaled by this factor (model assumption, < 1).
    relax_triangular_factor: float = 0.7

    # -- endurance and defects --------------------------------------------------------------------------
    #: SET/RESET cycles before a cell wears out and sticks (HfO2 arrays: ~1e6, Grossi et al.,
    #: "Resistive RAM endurance: array-level characterization...", IEEE TED 66(3), 2019).
    endurance_cycles: int = 1_000_000
    #: Stuck-at rates of a fresh array (defaults 0: set them per experiment).
    stuck_high_rate: float = 0.0
    stuck_low_rate: float = 0.0

    #: Highest voltage any terminal may see; above it the model refuses (oxide breakdown territory).
    v_abs_max: float = 5.0

    def __post_init__(self):
        for name, value in vars(self).items():
            if value < 0 and name != "relax_mean_rel":   # relaxation may drift either way
                raise ModelInputError(f"DeviceParams.{name} = {value} must not be negative")
        if not self.g_pristine_us < self.g_min_us < self.g_max_us:
            raise ModelInputError("DeviceParams: need g_pristine_us < g_min_us < g_max_us")
        if self.stuck_high_rate + self.stuck_low_rate > 1:
            raise ModelInputError("DeviceParams: stuck-at rates add up to more than 1")

    def compliance_us(self, v_g: np.ndarray, v_t: np.ndarray) -> np.ndarray:
        """Conductance the compliance current limits a SET to, for gate voltage `v_g`."""
        i_c_ua = self.k_ua_per_v2 * np.square(np.maximum(v_g - v_t, 0.0))
        return i_c_ua / self.v_c


HFO2_1T1R = DeviceParams()


def _check_voltage(name: str, v, params: DeviceParams):
    v = np.asarray(v, dtype=float)
    if np.any(v < 0) or np.any(v > params.v_abs_max) or not np.all(np.isfinite(v)):
        raise ModelInputError(f"{name} must be within 0..{params.v_abs_max} V, got {np.min(v):.3g}.."
                              f"{np.max(v):.3g} V")
    return v


class ReRAMArray:
    """A rows x columns array of 1T1R cells. All state is numpy arrays; randomness only through `rng`
    (device-to-device draws at construction, then a key for the per-cell cycle-to-cycle streams).

    Pulses take a boolean `select` mask (rows x columns) of the cells that see the pulse, and per-cell or
    scalar voltages; the waveform is a list of voltage samples of `dt_s` each (see `models.pulses`).
    """

    def __init__(self, rows: int, columns: int, rng: np.random.Generator,
                 params: DeviceParams = HFO2_1T1R, formed: bool = False):
        if rows < 1 or columns < 1:
            raise ModelInputError(f"array must have at least one row and column, got {rows}x{columns}")
        if not isinstance(rng, np.random.Generator):
            raise ModelInputError("rng must be a numpy.random.Generator (reproducible per seed)")
        self.params = p = params
        self.shape = (rows, columns)
        # Device-to-device parameters, drawn once.
        self.v_t = rng.normal(p.v_t, p.v_t_sigma, self.shape)
        self.v_set = rng.normal(p.v_set, p.v_set_d2d_sigma, self.shape)
        self.v_form = rng.normal(p.v_form, p.v_form_sigma, self.shape)
        draw = rng.random(self.shape)
        self.stuck = np.full(self.shape, Stuck.NONE, dtype=np.int8)
        self.stuck[draw < p.stuck_high_rate] = Stuck.HIGH
        self.stuck[(draw >= p.stuck_high_rate) & (draw < p.stuck_high_rate + p.stuck_low_rate)] = Stuck.LOW
        # State.
        self.formed = np.full(self.shape, formed)
        self.g_us = np.where(self.formed, p.g_min_us, p.g_pristine_us)
        self.g_us[self.stuck == Stuck.HIGH] = p.g_max_us
        self.g_us[self.stuck == Stuck.LOW] = p.g_pristine_us
        self.set_pulses = np.zeros(self.shape, dtype=np.int64)
        self.reset_pulses = np.zeros(self.shape, dtype=np.int64)
        # Relaxation: the conductance right after programming, the drift it will reach at t_settle, the
        # time since programming.
        self.g_programmed_us = self.g_us.copy()
        self.relax_delta_us = np.zeros(self.shape)
        self.age_s = np.zeros(self.shape)
        # Cycle-to-cycle randomness: per-cell streams, so a cell's history does not depend on which other
        # cells were pulsed with it (the RTL engine visits cells one by one, the reference all at once).
        self.noise = CellNoise(self.shape, rng)

    # ---- helpers --------------------------------------------------------------------------------------
    def _mask(self, select) -> np.ndarray:
        select = np.asarray(select, dtype=bool)
        if select.shape != self.shape:
            raise ModelInputError(f"select mask has shape {select.shape}, array is {self.shape}")
        return select

    def _per_cell(self, name: str, value) -> np.ndarray:
        value = _check_voltage(name, value, self.params)
        if value.ndim and value.shape != self.shape:
            raise ModelInputError(f"{name} has shape {value.shape}; give a scalar or {self.shape}")
        return np.broadcast_to(value, self.shape)

    @staticmethod
    def _waveform(samples) -> np.ndarray:
        """Relative amplitudes of a pulse's samples (1.0 = the programmed amplitude)."""
        samples = np.asarray(samples, dtype=float)
        if samples.ndim != 1 or samples.size == 0 or np.any(samples < 0) or np.any(samples > 1):
            raise ModelInputError("pulse waveform must be a non-empty 1-D array of values in [0, 1]")
        return samples

    def _live(self, select):
        """Cells that respond: selected, not stuck, not worn out."""
        return select & (self.stuck == Stuck.NONE)

    def _programmed(self, changed: np.ndarray, triangular: bool):
        """Restart relaxation for the cells a pulse changed, drawing the drift they will show."""
        p = self.params
        n = int(changed.sum())
        if n == 0:
            return
        g = self.g_us[changed]
        spread = p.relax_sigma_rel * g * (p.relax_triangular_factor if triangular else 1.0)
        draw = self.noise.normal(Stream.RELAX, changed)[changed]
        delta = p.relax_mean_rel * g + draw * np.hypot(spread, p.relax_sigma_abs_us)
        self.g_programmed_us[changed] = g
        self.relax_delta_us[changed] = delta
        self.age_s[changed] = 0.0

    def _wear(self, select):
        worn = select & (self.set_pulses + self.reset_pulses >= self.params.endurance_cycles) & (
            self.stuck == Stuck.NONE)
        # A worn-out cell keeps the state it had: stuck high if it was in LRS, low otherwise.
        mid = 0.5 * (self.params.g_min_us + self.params.g_max_us)
        self.stuck[worn & (self.g_us >= mid)] = Stuck.HIGH
        self.stuck[worn & (self.g_us < mid)] = Stuck.LOW

    # ---- operations -----------------------------------------------------------------------------------
    def form(self, select, v_bl, v_wl, waveform=(1.0,), dt_s: float = 1e-6) -> np.ndarray:
        """Forming pulse: cells whose forming voltage is reached form a filament limited by compliance.
        Returns the mask of cells that formed."""
        select = self._live(self._mask(select)) & ~self.formed
        v_bl = self._per_cell("v_bl", v_bl)
        v_wl = self._per_cell("v_wl", v_wl)
        peak = v_bl * self._waveform(waveform).max()
        formed = select & (peak >= self.v_form)
        g_cc = self.params.compliance_us(v_wl, self.v_t)
        jitter = np.exp(self.params.g_cc_sigma * self.noise.normal(Stream.FORM, select))
        self.g_us[formed] = np.clip(g_cc * jitter, self.params.g_min_us, self.params.g_max_us)[formed]
        self.formed |= formed
        self.set_pulses[select] += 1
        self._programmed(formed, triangular=False)
        self._wear(select)
        return formed

    def set_pulse(self, select, v_bl, v_wl, waveform=(1.0,), dt_s: float = 1e-7) -> None:
        """SET pulse on the top electrode (bit line) with the gate (word line) setting the compliance.

        `waveform` are relative amplitudes per sample of `dt_s` (square: all ones; triangular: a ramp
        up and down). Growth towards the compliance-limited conductance follows the rate law above.
        """
        p = self.params
        select = self._live(self._mask(select)) & self.formed
        v_bl = self._per_cell("v_bl", v_bl)
        v_wl = self._per_cell("v_wl", v_wl)
        samples = self._waveform(waveform)
        jitter = np.exp(p.g_cc_sigma * self.noise.normal(Stream.SET_COMPLIANCE, select))
        g_cc = np.clip(p.compliance_us(v_wl, self.v_t) * jitter, p.g_min_us, p.g_max_us)
        v_set = self.v_set + p.v_set_c2c_sigma * self.noise.normal(Stream.SET_THRESHOLD, select)
        # Fraction of the remaining way to g_cc left after the pulse: product over samples of exp(-dt/tau).
        exponent = np.zeros(self.shape)
        for relative in samples:
            overdrive = v_bl * relative - v_set
            exponent += dt_s / p.set_tau0_s * np.exp(np.minimum(overdrive / p.set_v0, 50.0))
        remaining = np.exp(-exponent)
        grow = select & (g_cc > self.g_us)
        new_g = np.where(grow, g_cc - (g_cc - self.g_us) * remaining, self.g_us)
        changed = grow & (np.abs(new_g - self.g_us) > 1e-9)
        self.g_us = new_g
        self.set_pulses[select] += 1
        self._programmed(changed, triangular=len(samples) > 1 and samples[0] < samples.max())
        self._wear(select)

    def reset_pulse(self, select, v_sl, v_wl, waveform=(1.0,), dt_s: float = 1e-7) -> None:
        """RESET pulse on the source line: the conductance falls with the overdrive above V_reset."""
        p = self.params
        select = self._live(self._mask(select)) & self.formed
        v_sl = self._per_cell("v_sl", v_sl)
        self._per_cell("v_wl", v_wl)       # the gate must be on, and within limits
        peak = v_sl * self._waveform(waveform).max()
        overdrive = np.maximum(peak - p.v_reset, 0.0)
        factor = np.exp(-overdrive / p.reset_v0 + p.reset_sigma * self.noise.normal(Stream.RESET, select))
        shrink = select & (overdrive > 0)
        # Never below the HRS floor, and a RESET never raises a cell that was already below it.
        floor = np.minimum(self.g_us, p.g_min_us)
        self.g_us = np.where(shrink, floor + (self.g_us - floor) * np.minimum(factor, 1.0), self.g_us)
        self.reset_pulses[select] += 1
        self._programmed(shrink, triangular=False)
        self._wear(select)

    def relax(self, elapsed_s: float) -> None:
        """Let `elapsed_s` seconds pass: each programmed cell moves along its drawn relaxation curve."""
        if elapsed_s < 0:
            raise ModelInputError(f"elapsed time {elapsed_s} s is negative")
        self.age_s = self.age_s + elapsed_s
        p = self.params
        first_hour = np.log1p(np.minimum(self.age_s, p.relax_settle_s) / p.relax_t0_s) / np.log1p(
            p.relax_settle_s / p.relax_t0_s)
        tail = p.relax_tail_per_decade * np.log10(np.maximum(self.age_s, p.relax_settle_s) / p.relax_settle_s)
        movable = self.stuck == Stuck.NONE
        relaxed = self.g_programmed_us + self.relax_delta_us * (first_hour + tail)
        self.g_us = np.where(movable, np.clip(relaxed, p.g_pristine_us, p.g_max_us), self.g_us)

    def read(self, v_read: float = 0.1, select=None) -> np.ndarray:
        """Conductances as a read at `v_read` sees them (with read noise); selected cells (all by default)
        are disturbed if `v_read` exceeds the disturb limit. Unselected cells read as NaN."""
        p = self.params
        v_read = float(_check_voltage("v_read", v_read, p))
        select = np.ones(self.shape, bool) if select is None else self._mask(select)
        if v_read > p.v_read_disturb:
            nudged = self._live(select) & self.formed
            self.g_us = np.where(nudged, np.minimum(
                self.g_us * (1 + p.read_disturb_rate_per_v * (v_read - p.v_read_disturb)), p.g_max_us),
                self.g_us)
        noise = self.noise.normal(Stream.READ, select) * np.hypot(p.read_noise_rel * self.g_us,
                                                                   p.read_noise_abs_us)
        return np.where(select, np.maximum(self.g_us + noise, 0.0), np.nan)
