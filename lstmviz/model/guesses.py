"""How many next-character guesses are kept per character: recorded in a store, shown on
hover, returned by sampling. Torch-free, so reading a store does not load torch."""

TOP_K = 5
