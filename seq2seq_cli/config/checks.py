"""Checks across fields: combinations of values that each pass alone but cannot work
together, refused with the keys, the values and what would work."""

from __future__ import annotations

import os
from pathlib import Path

from seq2seq_cli.config.schema import Config, ModelConfig, TrainConfig
from seq2seq_cli.errors import ConfigError


def check_cross_fields(config: Config, source: str) -> None:
    data = config.data
    held_out = data.split_fractions()
    if sum(held_out) >= 1.0:
        raise ConfigError(f"{source}: data.val_fraction + data.test_fraction = "
                          f"{sum(held_out):g} leaves no training pairs; the sum must be "
                          "below 1")
    if config.train.init_from == "":
        raise ConfigError(f"{source}: train.init_from = '' is not allowed; give a run "
                          "directory or checkpoint file, or null")
    _check_cache(data.cache, source)
    for key in ("path", "val_path", "test_path"):
        if getattr(data, key) == "":
            raise ConfigError(f"{source}: data.{key} = '' is not allowed; give a file path"
                              + ("" if key == "path" else " or null"))
    if config.train.select_by != "val_loss" and data.val_path is None and held_out[0] == 0:
        raise ConfigError(f"{source}: train.select_by = {config.train.select_by!r} needs "
                          "validation pairs; set data.val_fraction > 0 or data.val_path")
    if config.model.dropout > 0 and config.model.num_layers == 1:
        raise ConfigError(f"{source}: model.dropout = {config.model.dropout:g} has no effect "
                          "with model.num_layers = 1 (dropout acts between stacked layers); "
                          "set model.num_layers >= 2 or model.dropout = 0, or use "
                          "model.output_dropout, which acts with one layer")
    _check_attention_options(config.model, source)
    _check_schedule(config.train, source)
    _check_decoder_units(config.model, source)
    if config.train.max_minutes is not None and not config.train.max_minutes > 0:
        raise ConfigError(f"{source}: train.max_minutes = {config.train.max_minutes:g} is out "
                          "of range; allowed: > 0 (null: no time limit)")


def _check_schedule(train: TrainConfig, source: str) -> None:
    # train.lr_factor and train.lr_patience only act with plateau; their defaults are set
    # either way, so they are not refused with another schedule.
    if train.min_learning_rate > 0 and train.lr_schedule == "none":
        raise ConfigError(f"{source}: train.min_learning_rate = {train.min_learning_rate:g} "
                          "has no effect with train.lr_schedule = 'none' (the rate stays "
                          "train.learning_rate); choose plateau, linear, cosine or "
                          "inverse_sqrt, or set train.min_learning_rate = 0")
    if train.min_learning_rate > train.learning_rate:
        raise ConfigError(f"{source}: train.min_learning_rate = {train.min_learning_rate:g} "
                          f"is above train.learning_rate = {train.learning_rate:g}; the "
                          f"{train.lr_schedule} schedule decays from the learning rate to "
                          "this floor, so it must be at most train.learning_rate")
    if train.max_steps is not None and 0 < train.max_steps <= train.warmup_steps:
        raise ConfigError(f"{source}: train.warmup_steps = {train.warmup_steps} leaves no "
                          f"step of train.max_steps = {train.max_steps} after warmup; "
                          "allowed: fewer warmup steps than train.max_steps")


def cache_is_path(cache: str) -> bool:
    """Whether data.cache is written as a path (``./name``, ``/abs``, ``~/x``, ``a/b``)
    rather than as a bare word."""
    return cache.startswith(("~", ".")) or "/" in cache or os.sep in cache


def _check_cache(cache: str, source: str) -> None:
    # A bare word must name an existing directory: otherwise a typo (`of` for `off`) would
    # quietly create a directory of that name wherever the command runs.
    if cache in ("auto", "off") or (cache and cache_is_path(cache)):
        return
    if cache and "\0" not in cache and Path(cache).is_dir():
        return
    raise ConfigError(f"{source}: data.cache = {cache!r} is not allowed; give auto, off, a "
                      "directory written as a path (./name, /absolute/dir, ~/dir) or an "
                      "existing directory")


def _check_attention_options(model: ModelConfig, source: str) -> None:
    if model.attention != "none":
        return
    if model.input_feeding:
        raise ConfigError(f"{source}: model.input_feeding = true needs attention (it feeds "
                          "the attentional vector back); set model.attention to dot, "
                          "general or additive, or model.input_feeding = false")
    if model.encoder_output_dropout > 0:
        raise ConfigError(f"{source}: model.encoder_output_dropout = "
                          f"{model.encoder_output_dropout:g} has no effect with "
                          "model.attention = 'none' (only attention reads the encoder "
                          "outputs); use model.output_dropout, or turn attention on")


def _check_decoder_units(model: ModelConfig, source: str) -> None:
    encoder_width = model.latent_dim * (2 if model.bidirectional else 1)
    if model.attention != "dot" or model.decoder_units in (None, encoder_width):
        return
    raise ConfigError(f"{source}: model.attention = 'dot' needs the decoder as wide as the "
                      f"encoder's outputs ({encoder_width}), but model.decoder_units = "
                      f"{model.decoder_units}; use model.attention = general or additive "
                      "(they project the encoder outputs), or model.decoder_units = null")
