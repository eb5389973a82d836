"""The activation store: one directory per recording, memory-mapped, neuron-major; a
sharded store is a manifest of ordinary stores, opened through the same ``open_store``."""
