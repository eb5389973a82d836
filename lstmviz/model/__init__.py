"""The character RNN and everything that runs it: hook points, the fused and exact step
paths, LSTM variants, interventions, checkpoints, import, sampling and training."""
