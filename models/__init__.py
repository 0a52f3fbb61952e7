"""numpy models of the analog side: 1T1R cells, P&V algorithms, crossbar, neurons, energy."""

from .crossbar import (Crossbar, IRDropSolver, differential_currents, ir_drop_currents, read_currents,
                       slc_group_conductance)
from .device import HFO2_1T1R, DeviceParams, ModelInputError, ReRAMArray, Shape, Stuck
from .energy import EnergyMeter, EnergyParams
from .neurons import NeuronBank, NeuronMode, NeuronParams, column_voltages, differential_inputs
from .pulses import pulse_codes, relative_waveform
from .pv import Algorithm, PVResult, PVSettings, adc_codes, program_and_verify

__all__ = [
    "Crossbar", "IRDropSolver", "differential_currents", "ir_drop_currents", "read_currents", "slc_group_conductance",
    "HFO2_1T1R", "DeviceParams", "ModelInputError", "ReRAMArray", "Shape", "Stuck",
    "EnergyMeter", "EnergyParams",
    "NeuronBank", "NeuronMode", "NeuronParams", "column_voltages", "differential_inputs",
    "pulse_codes", "relative_waveform",
    "Algorithm", "PVResult", "PVSettings", "adc_codes", "program_and_verify",
]
