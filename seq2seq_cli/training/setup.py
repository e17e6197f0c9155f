"""Setting up a run: every check a config, corpus or run directory can fail, then the
trainer built, resumed (``--resume``) or started from another run's weights
(``train.init_from``).

Every check comes before the run directory is touched: a typo leaves no half-made run
behind, and --overwrite deletes nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace

import torch

from seq2seq_cli.checkpoint import Checkpoint, read_checkpoint, resolve_checkpoint
from seq2seq_cli.config import (
    LOADING_ONLY_DATA_KEYS,
    Config,
    dump_config,
    first_difference,
)
from seq2seq_cli.data.batching import batches_per_epoch
from seq2seq_cli.data.corpus import Corpus, load_corpus
from seq2seq_cli.data.encoded import EncodedPairs
from seq2seq_cli.data.vocabulary import Vocabularies
from seq2seq_cli.errors import CheckpointError, ConfigError, DataError
from seq2seq_cli.model.seq2seq import build_model
from seq2seq_cli.run_dir import RunDirectory
from seq2seq_cli.runtime import configure_threads, resolve_precision
from seq2seq_cli.training.checkpoints import restore
from seq2seq_cli.training.distributed import Distributed
from seq2seq_cli.training.events import CorpusLoading, EventHandler, RunStarted
from seq2seq_cli.training.experiment_log import check_available
from seq2seq_cli.training.optim import build_optimizer
from seq2seq_cli.training.state import Trainer


def setup_trainer(config: Config, run: RunDirectory, resume: bool, overwrite: bool,
                  dist: Distributed, run_lock: contextlib.ExitStack, on_event: EventHandler,
                  should_stop: Callable[[], bool]) -> Trainer:
    """Check, load and lay out everything; rank 0 holds the run directory's lock in
    ``run_lock`` until training ends."""
    precision = resolve_precision(config.train.precision, dist.device)  # nothing written yet
    if config.train.tensorboard:
        check_available()
    resumed = dist.from_main(lambda: check_run_dir(config, run, resume, overwrite, run_lock))
    threads = configure_threads(config.train.threads, dist.local_world_size,
                                recorded=resumed_threads(resumed))
    if resumed is not None:
        config = replace(resumed.config, train=config.train)  # data and model checked equal
    corpus = load_corpus(config.data, progress=lambda done, total: on_event(
        CorpusLoading(done, total)))
    if config.train.select_by != "val_loss" and not corpus.val:
        raise DataError(f"train.select_by = {config.train.select_by!r} needs validation "
                        f"pairs, and the split of {config.data.shown_path()} left none; use "
                        "data.val_path or a larger corpus")
    start = fine_tuning_start(config) if resumed is None else None
    inherited = resumed if resumed is not None else start
    vocabs = inherited.vocabs if inherited is not None else corpus.vocabularies()
    if resumed is None:
        dist.from_main(lambda: lay_out_run(run, overwrite, config, vocabs, run_lock))
    trainer = build_trainer(config, run, vocabs, corpus, dist, on_event, should_stop)
    trainer.precision, trainer.threads = precision.running, threads
    if resumed is not None:
        restore(trainer, resumed)
    elif start is not None:
        trainer.model.load_state_dict(start.weights)  # optimizer and counters stay fresh
    on_event(RunStarted(
        run_dir=run.root, device=str(dist.device), threads=threads,
        world_size=dist.world_size, train_pairs=corpus.train_size,
        val_pairs=len(corpus.val), test_pairs=len(corpus.test),
        batches_per_epoch=batches_per_epoch(trainer.train_pairs.source.lengths,
                                            config.train.batch_size, config.train.batching),
        parameters=sum(p.numel() for p in trainer.model.parameters()),
        start_epoch=trainer.progress.epoch + 1, epochs=config.train.epochs,
        validate_every=config.train.validate_every,
        init_from=resolve_checkpoint(config.train.init_from) if start else None,
        unseen_units=corpus.unseen_units(vocabs) if start else ((), ()),
        corpus_load=corpus.load, units=(config.data.source_units, config.data.target_units),
        precision=precision.running, precision_fallback=precision.reason))
    return trainer


def resumed_threads(resumed: Checkpoint | None) -> int | None:
    """The thread count the resumed run trained with (None for a new run, or a checkpoint
    written before runs recorded it)."""
    threads = resumed.extra.get("threads") if resumed is not None else None
    return threads if isinstance(threads, int) and threads >= 1 else None


def fine_tuning_start(config: Config) -> Checkpoint | None:
    """The checkpoint train.init_from names, checked to hold the configured model."""
    if config.train.init_from is None:
        return None
    start = read_checkpoint(config.train.init_from)
    changed = first_difference(start.config, config, "model")
    if changed:
        key, before, now = changed
        raise ConfigError(f"train.init_from: model.{key} = {now!r} differs from "
                          f"{resolve_checkpoint(config.train.init_from)}'s {before!r}; "
                          "fine-tuning keeps the model of the checkpoint it starts from, so "
                          "copy its model section")
    for key in ("source_units", "target_units"):
        was, wanted = getattr(start.config.data, key), getattr(config.data, key)
        if was != wanted:
            raise ConfigError(f"train.init_from: data.{key} = {wanted!r} differs from "
                              f"{resolve_checkpoint(config.train.init_from)}'s {was!r}; "
                              "fine-tuning keeps the units of its vocabularies")
    return start


def check_run_dir(config: Config, run: RunDirectory, resume: bool, overwrite: bool,
                  run_lock: contextlib.ExitStack) -> Checkpoint | None:
    """Runs on rank 0 only: check the run directory; to resume, lock it and load last.pt."""
    run.check_usable(resume=resume, overwrite=overwrite)
    if not resume:
        return None  # a new run is locked once its config and corpus have loaded
    run_lock.enter_context(run.locked())
    checkpoint = Checkpoint.read(run.last)
    if checkpoint.training is None:
        raise CheckpointError(f"{run.last}: holds weights only (no optimizer state), so "
                              "training cannot resume from it")
    check_resumable(config, checkpoint)
    run.remove_temporaries()  # left by a killed process; last.pt is intact without them
    return checkpoint


def lay_out_run(run: RunDirectory, overwrite: bool, config: Config, vocabs: Vocabularies,
                run_lock: contextlib.ExitStack) -> None:
    """Runs on rank 0 only: lock a new run directory, lay it out with its config and
    vocabularies."""
    run_lock.enter_context(run.locked())
    # Checked again under the lock: another process may have started a run meanwhile.
    run.check_usable(resume=False, overwrite=overwrite)
    run.prepare(overwrite=overwrite)
    run.write_text(run.config, dump_config(config))
    run.write_text(run.vocab, vocabs.to_json())


def check_resumable(config: Config, checkpoint: Checkpoint) -> None:
    """A resumed run keeps its data and model settings; only train.* (and the data keys
    that change how the corpus loads, never what it holds) may change."""
    for section in ("data", "model"):
        ignore = LOADING_ONLY_DATA_KEYS if section == "data" else ()
        changed = first_difference(checkpoint.config, config, section, ignore)
        if changed:
            key, before, now = changed
            raise ConfigError(f"--resume: {section}.{key} = {now!r} differs from the run's "
                              f"{before!r}; a resumed run keeps its data and model "
                              "settings (only train.* may change)")


def build_trainer(config: Config, run: RunDirectory, vocabs: Vocabularies, corpus: Corpus,
                  dist: Distributed, on_event: EventHandler,
                  should_stop: Callable[[], bool]) -> Trainer:
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, vocabs.source.num_features,
                        vocabs.target.num_features).to(dist.device)
    train_pairs = corpus.train_pairs(vocabs)
    optimizer, schedule = build_optimizer(
        config.train, model, batches_per_epoch(train_pairs.source.lengths,
                                               config.train.batch_size, config.train.batching))
    scaler = torch.amp.GradScaler(dist.device.type,
                                  enabled=config.train.precision == "fp16")
    return Trainer(config=config, run=run, vocabs=vocabs, train_pairs=train_pairs,
                   val_pairs=EncodedPairs.from_pairs(corpus.val, vocabs),
                   val_texts=corpus.val, test_texts=corpus.test, model=model,
                   wrapped=dist.wrap(model), optimizer=optimizer, schedule=schedule,
                   scaler=scaler, device=dist.device, dist=dist, on_event=on_event,
                   should_stop=should_stop)
