"""charrnn: character-level RNN, LSTM and GRU language models in NumPy.

This package is imported by the CLI before it knows which command runs, so it
stays light: no numpy here (``charrnn --help`` must be fast).
"""

__version__ = "0.1.0"

from charrnn.errors import CharRNNError, CheckpointError, ConfigError, DataError  # noqa: E402,F401
