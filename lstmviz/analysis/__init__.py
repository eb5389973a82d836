"""What a store says: rankings against features, contexts, distributions, summaries,
saturation, hypotheses, the n-gram baseline and evaluation, comparison, ablation."""
