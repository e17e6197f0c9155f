"""Training, one concept per module, imports pointing down:

``events`` (what a run reports; no torch) <- ``state`` (the trainer, its counters and budget)
<- ``optim`` (optimizer and learning-rate schedule) <- ``step`` (batch -> loss -> optimizer
step) <- ``validation`` (metrics; writes nothing) <- ``checkpoints`` (save, restore, keep-N)
<- ``setup`` (checks, resume, fine-tuning) <- ``loop`` (composes them; ``train_from_config``).
``distributed`` wraps torchrun; ``experiment_log`` and ``plot`` are optional outputs.
"""
