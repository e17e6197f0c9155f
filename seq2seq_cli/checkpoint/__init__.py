"""Checkpoints: the file format (``format``), averaging the weights of several
(``average``) and ensembles of trained models (``ensemble``).

The format's names are re-exported here: ``from seq2seq_cli.checkpoint import Checkpoint``.
"""

from seq2seq_cli.checkpoint.format import (
    FORMAT,
    FORMAT_VERSION,
    Checkpoint,
    TrainedModel,
    TrainingState,
    load_checkpoint,
    load_trained_model,
    read_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
    write_checkpoint,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "TrainedModel", "TrainingState",
           "load_checkpoint", "load_trained_model", "read_checkpoint", "resolve_checkpoint",
           "save_checkpoint", "write_checkpoint"]
