"""ReRAM compute-in-memory neuromorphic chip: control plane, analog models and host."""
