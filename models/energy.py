"""Energy accounting: reads, programming pulses, synaptic events, neuron spikes and SPI bits.

Array energies are computed from the physics (V^2 G t for a read, V I t for a pulse); the rest are per-
event figures with their sources. A run reports pJ per synaptic event next to SPIRIT's measured 3.6 pJ
(array) and 180 pJ (with logic and SPI) (Valentian et al., IEDM 2019).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .device import ModelInputError

__all__ = ["EnergyParams", "EnergyMeter", "SPIRIT_PJ_PER_EVENT_ARRAY", "SPIRIT_PJ_PER_EVENT_TOTAL"]

SPIRIT_PJ_PER_EVENT_ARRAY = 3.6
SPIRIT_PJ_PER_EVENT_TOTAL = 180.0
PJ = 1e12


@dataclass(frozen=True)
class EnergyParams:
    #: How long a read pulse holds the word line (model assumption: a few system cycles at 12 MHz would
    #: be far longer than the bit line needs to settle; 50 ns is a NeuRRAM-like sampling window).
    t_read_s: float = 50e-9
    #: Supply of the neuron's sampling switch and comparator (130 nm-class 1.2 V core).
    v_dd: float = 1.2
    #: Energy of one spike of an integrate-and-fire neuron: 1.52 pJ (Kubendran et al., "A 1.52 pJ/spike
    #: reconfigurable multimodal integrate-and-fire neuron array transceiver", ICONS 2020, NeuRRAM's neuron).
    e_spike_pj: float = 1.52
    #: One SPI bit: a pad and trace of ~6 pF (pin capacitance of the iCE40 UltraPlus data sheet, DS1056)
    #: charged to 1.8 V I/O on half the bits: 0.5 C V^2.
    c_pad_pf: float = 6.0
    v_io: float = 1.8
    #: Digital control per synaptic event (decoding, sequencing): model assumption sized so that logic
    #: and SPI together come to the same order as SPIRIT's 180 pJ per event.
    e_logic_per_event_pj: float = 20.0

    @property
    def e_spi_bit_pj(self) -> float:
        return 0.5 * self.c_pad_pf * 1e-12 * self.v_io ** 2 * PJ


@dataclass
class EnergyMeter:
    params: EnergyParams = field(default_factory=EnergyParams)
    read_pj: float = 0.0
    program_pj: float = 0.0
    neuron_pj: float = 0.0
    spike_pj: float = 0.0
    logic_pj: float = 0.0
    spi_pj: float = 0.0
    synaptic_events: int = 0
    spikes: int = 0
    spi_bits: int = 0

    def read(self, g_us: np.ndarray, v_rows: np.ndarray, t_s: float | None = None) -> float:
        """A read with word-line voltages `v_rows` (rows,) across `g_us`: sum of V^2 G t over the cells."""
        g_us = np.asarray(g_us, dtype=float)
        v_rows = np.asarray(v_rows, dtype=float)
        if v_rows.shape != (g_us.shape[0],):
            raise ModelInputError(f"read voltages {v_rows.shape} do not match {g_us.shape[0]} rows")
        t = self.params.t_read_s if t_s is None else t_s
        energy = float(np.square(v_rows) @ g_us.sum(axis=1)) * 1e-6 * t * PJ
        self.read_pj += energy
        return energy

    def pulse(self, v: np.ndarray, i_ua: np.ndarray, t_s: float) -> float:
        """Programming pulses: V x I x t summed over the cells (arrays broadcast together)."""
        energy = float(np.sum(np.asarray(v) * np.asarray(i_ua))) * 1e-6 * t_s * PJ
        self.program_pj += energy
        return energy

    def events(self, synaptic_events: int, neuron_samples: int, c_sample_ff: float) -> None:
        """Synaptic events (a row pulse reaching one synapse) and neuron samples (a C_sample charge)."""
        self.synaptic_events += synaptic_events
        self.neuron_pj += neuron_samples * c_sample_ff * 1e-15 * self.params.v_dd ** 2 * PJ
        self.logic_pj += synaptic_events * self.params.e_logic_per_event_pj

    def fired(self, spikes: int) -> None:
        self.spikes += spikes
        self.spike_pj += spikes * self.params.e_spike_pj

    def spi(self, bits: int) -> None:
        self.spi_bits += bits
        self.spi_pj += bits * self.params.e_spi_bit_pj

    @property
    def array_pj(self) -> float:
        return self.read_pj + self.neuron_pj + self.spike_pj

    @property
    def total_pj(self) -> float:
        return self.array_pj + self.logic_pj + self.spi_pj

    def inference(self, routed, g_us, v_read: float, layer_neurons, neurons_per_core: int, c_sample_ff: float,
                  spikes: int) -> None:
        """One spiking inference: `routed` holds, per time step, the (core, row) row events delivered.
        Each step reads every core that has row events (`g_us[core]`, rows x columns) with those rows at
        `v_read` volts; a row event on core c reaches the `layer_neurons[c]` neurons of the layer there
        (synaptic events); every neuron (`neurons_per_core` on each core) samples once a step; and
        `spikes` were fired."""
        for delivered in routed:
            for core, g_core in enumerate(g_us):
                rows = [row for c, row in delivered if c == core]
                if rows:
                    v_rows = np.zeros(g_core.shape[0])
                    v_rows[rows] = v_read
                    self.read(g_core, v_rows)
        synaptic = sum(layer_neurons[c] for step in routed for c, _ in step if c < len(layer_neurons))
        self.events(synaptic, len(routed) * len(g_us) * neurons_per_core, c_sample_ff)
        self.fired(spikes)

    def per_inference_nj(self, inferences: int) -> dict[str, float]:
        """nJ per inference over `inferences`, array only and with logic and SPI."""
        return {"array": self.array_pj / inferences / 1e3, "total": self.total_pj / inferences / 1e3}

    def per_event(self) -> dict[str, float]:
        """pJ per synaptic event, array only and with logic and SPI, beside SPIRIT's figures."""
        if self.synaptic_events == 0:
            raise ModelInputError("no synaptic events recorded")
        return {"array_pj": self.array_pj / self.synaptic_events,
                "total_pj": self.total_pj / self.synaptic_events,
                "spirit_array_pj": SPIRIT_PJ_PER_EVENT_ARRAY,
                "spirit_total_pj": SPIRIT_PJ_PER_EVENT_TOTAL}
