"""Every unit explained in words, offline: a search over a grammar of candidate
descriptions, each simulating the unit through a fitted monotone map, scored by the
correlation of simulation and truth on held-out documents (Bills et al. 2023, "Language
models can explain neurons in language models", done with no language model; Foote et al.
2023, N2G, for a pattern-based explainer)."""
