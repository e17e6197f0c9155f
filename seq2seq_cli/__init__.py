"""seq2seq-cli: character-level LSTM sequence-to-sequence models from the command line."""

__version__ = "0.1.0"
