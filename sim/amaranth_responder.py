"""`sim.port_responder.PortResponder` on an analog port in Amaranth's simulator: the same answers, cycle
for cycle, as the cocotb bridge gives on pins.

At each clock edge the process samples the port's outputs as they stood just before it (the middle of the
cycle that ends there, where the cocotb bridge samples) and sets the responder's answers right after, so
the RTL sees them at the next edge. Unlike the bridge it wakes every cycle; a cycle the responder ignores
costs a method call.
"""

from __future__ import annotations

from enum import Enum

from amaranth.lib import data

from .port_responder import CELL_MEMBERS, DRIVEN_MEMBERS, NEURON_MEMBERS, PortResponder

__all__ = ["port_responder_process"]


def port_responder_process(responder: PortResponder, port, **fixed: int):
    """An async process (for `Simulator.add_process`) answering `port` with `responder`. `fixed` gives
    members the port does not have or that should read as a constant (the inference sequencer alone
    leaves `op` to the chip's top: `op=Op.INFER`)."""
    names = [n for n in (*CELL_MEMBERS, *NEURON_MEMBERS) if n not in fixed and hasattr(port, n)]
    driven = [n for n in DRIVEN_MEMBERS if hasattr(port, n)]
    constants = {name: int(value) for name, value in fixed.items()}

    async def process(ctx):
        for name in driven:
            ctx.set(getattr(port, name), 0)
        async for _, _, *values in ctx.tick().sample(*(getattr(port, n) for n in names)):
            sample = dict(constants)
            for name, value in zip(names, values):
                if isinstance(value, data.Const):           # a member with a layout: its bits, as on pins
                    value = value.as_bits()
                sample[name] = value.value if isinstance(value, Enum) else value
            for name, value in responder.step(sample).items():
                if name in driven:
                    ctx.set(getattr(port, name), value)

    return process
