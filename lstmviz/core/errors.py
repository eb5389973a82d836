"""User-facing errors: one clear sentence, shown without a traceback by the CLI and the app."""


class LstmvizError(Exception):
    """An error a user can cause and fix (bad path, corrupt file, out-of-range neuron...)."""


class CorpusError(LstmvizError):
    """The text to read is missing, empty or unreadable."""


class CheckpointError(LstmvizError):
    """A checkpoint directory is missing, corrupt, truncated or inconsistent."""


class StoreError(LstmvizError):
    """An activation store is missing, truncated or does not match its checkpoint."""


class NeuronError(StoreError):
    """A neuron id that is malformed or names no neuron of the model or store."""


class ConfigError(LstmvizError, ValueError):
    """A setting out of range (a model size, a training option, a command-line number)."""
