"""The experiment config: one tree of frozen dataclasses that mirrors the YAML sections.

Every default, bound and allowed value lives in the field definitions below, and nowhere
else; the config reference (docs/config.md) is generated from the same metadata
(``seq2seq_cli.config.reference``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from seq2seq_cli.config.fields import Paths, option

# Data settings that change how the corpus is loaded, never what it holds: a resumed run
# may change them.
LOADING_ONLY_DATA_KEYS = ("cache", "workers")
# How a side's text is cut into units (seq2seq_cli/data/units.py).
UNIT_KINDS = ("characters", "symbols")


@dataclass(frozen=True)
class DataConfig:
    path: Paths = option("data/dates.tsv", "Parallel corpus: `source<TAB>target` per line "
                         "(a third attribution column is ignored). Relative to the working "
                         "directory; `~` is the home directory. A glob pattern "
                         "(`corpus/*.tsv`) or a YAML list of paths and patterns joins "
                         "several files, in that order (a pattern's matches sorted).")
    num_samples: int | None = option(None, "Use only the first N pairs of the file "
                                     "(null: all).", min=1)
    max_source_length: int | None = option(None, "Drop pairs whose source is longer "
                                           "(in units of data.source_units, after "
                                           "normalisation; null: no limit).", min=1)
    max_target_length: int | None = option(None, "Drop pairs whose target is longer "
                                           "(in units of data.target_units; null: no "
                                           "limit).", min=1)
    lowercase: bool = option(False, "Lowercase both sides before anything else.")
    normalization: str = option("NFC", "Unicode normalisation applied to both sides.",
                                choices=("NFC", "NFD", "NFKC", "NFKD", "none"))
    val_fraction: float = option(0.1, "Fraction of pairs held out for validation.",
                                 min=0.0, below=1.0)
    test_fraction: float = option(0.0, "Fraction of pairs held out for the final test.",
                                  min=0.0, below=1.0)
    val_path: str | None = option(None, "Validation pairs from this file (same format), used "
                                  "whole instead of a data.val_fraction share of data.path "
                                  "(null: split them off data.path).")
    test_path: str | None = option(None, "Test pairs from this file (same format), used whole "
                                   "instead of a data.test_fraction share of data.path "
                                   "(null: split them off data.path).")
    split_seed: int = option(0, "Seed of the train/val/test split (independent of "
                             "train.seed, so the split stays put across training seeds).",
                             min=0)
    skip_malformed: bool = option(False, "Skip and count malformed lines instead of failing.")
    cache: str = option("auto", "Where the encoded corpus is kept so that later runs, "
                        "--resume and inspect-data load it in seconds: `auto` (a directory "
                        "under $XDG_CACHE_HOME or ~/.cache/seq2seq-cli), `off` (encode on "
                        "every load), or a directory written as a path (`./corpus-store`, "
                        "`/abs/dir`, `~/dir`; relative to the working directory) or naming "
                        "an existing directory; any other word is an error, so a typo "
                        "creates nothing. Everything the store writes (its lock included) "
                        "stays inside that directory. Checked against the corpus files and "
                        "the data settings on every load; rebuilt when they differ.",
                        booleans=("off", "auto"))
    source_units: str = option("characters", "What one unit of the source is: `characters` "
                               "(the Keras recipe: every character, spaces included) or "
                               "`symbols` (tokens separated by whitespace, such as phonemes "
                               "`k æ t` or tags `V;PST`). Vocabulary, one-hot width, lengths "
                               "and data.max_source_length count these units.",
                               choices=UNIT_KINDS)
    target_units: str = option("characters", "What one unit of the target is (as "
                               "data.source_units); `symbols` outputs are joined with one "
                               "space.", choices=UNIT_KINDS)
    workers: int | None = option(None, "Processes that encode the corpus when it is not "
                                 "cached (null: one per core for files of 32 MiB or more).",
                                 min=1)

    def shown_path(self) -> str:
        """data.path for messages: the path, or the paths joined by commas."""
        return self.path if isinstance(self.path, str) else ", ".join(self.path)

    def split_fractions(self) -> tuple[float, float]:
        """The (val, test) shares split off data.path: none where a file provides the split."""
        return (0.0 if self.val_path is not None else self.val_fraction,
                0.0 if self.test_path is not None else self.test_fraction)


@dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = option(256, "LSTM units per direction in the encoder.", min=1)
    num_layers: int = option(1, "Stacked LSTM layers in the encoder and in the decoder.", min=1)
    bidirectional: bool = option(False, "Bidirectional encoder; the decoder then has "
                                 "2 × latent_dim units (forward and backward states joined), "
                                 "unless model.decoder_units sets another width.")
    dropout: float = option(0.0, "Dropout between stacked LSTM layers (needs num_layers > 1; "
                            "see model.output_dropout for one layer).",
                            min=0.0, below=1.0)
    attention: str = option("none", "Attention of the decoder over every encoder output, "
                            "on top of the (h, c) hand-off: `dot` and `general` (Luong et al. "
                            "2015), `additive` (Bahdanau et al. 2015); `none` is the Keras "
                            "recipe. See docs/quality.md.",
                            choices=("none", "dot", "general", "additive"))
    input_feeding: bool = option(False, "Feed the previous attentional vector into the next "
                                 "decoder step (Luong et al. 2015). Runs the decoder one step "
                                 "at a time in training, so it is slower; needs "
                                 "model.attention.")
    output_dropout: float = option(0.0, "Dropout on the vector the output layer reads: the "
                                   "decoder's outputs, or the attentional vector with "
                                   "attention. Works with one layer.", min=0.0, below=1.0)
    encoder_output_dropout: float = option(0.0, "Dropout on the encoder outputs that "
                                           "attention reads (its memory); needs "
                                           "model.attention.", min=0.0, below=1.0)
    reverse_source: bool = option(False, "Feed each source to the encoder last character "
                                  "first (Sutskever et al., 2014): the first target characters "
                                  "then depend on the most recently read ones. Helps on "
                                  "fra-eng, hurts on the dates demo; see docs/quality.md.")
    embedding_dim: int | None = option(None, "Learned embedding of this size in front of "
                                       "the encoder and the decoder LSTM instead of the "
                                       "one-hot input (null: one-hot, the Keras recipe). Makes "
                                       "the input product independent of the alphabet size.",
                                       min=1)
    decoder_units: int | None = option(None, "Units of the decoder LSTM (null: latent_dim, "
                                       "× 2 with model.bidirectional). Another value puts a "
                                       "learned bridge (linear + tanh for h, linear for c) "
                                       "between the encoder's final states and the decoder's "
                                       "initial states; model.attention = dot then needs the "
                                       "default width.", min=1)
    init: str = option("keras", "Initial weights. `keras`: as the Keras recipe's layers "
                       "(Glorot-uniform input and dense weights, orthogonal recurrent weights, "
                       "zero biases except 1 for the forget gate); `pytorch`: PyTorch's "
                       "defaults (uniform in ±1/√units).", choices=("keras", "pytorch"))


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = option(100, "Maximum number of epochs.", min=1)
    batch_size: int = option(64, "Global batch size (split across processes under torchrun).",
                             min=1)
    optimizer: str = option("rmsprop", "Optimizer.", choices=("rmsprop", "adam", "sgd"))
    learning_rate: float = option(1e-3, "Initial learning rate.", min=0.0)
    momentum: float = option(0.0, "Momentum for sgd and rmsprop.", min=0.0, below=1.0)
    weight_decay: float = option(0.0, "L2 weight decay.", min=0.0)
    clip_norm: float | None = option(None, "Clip the global gradient norm to this value "
                                     "(null: no clipping).", min=0.0)
    lr_schedule: str = option("none", "`plateau` multiplies the learning rate by lr_factor "
                              "when the select_by metric has not improved for lr_patience "
                              "validations. `linear` and `cosine` decay it every step over "
                              "the run's budget: train.max_steps when set, else "
                              "train.max_minutes (training time spent over the budget, so "
                              "the floor comes when the time runs out), else train.epochs × "
                              "batches per epoch, reaching train.min_learning_rate at its "
                              "end. `inverse_sqrt`: learning_rate × √(warmup_steps / step) "
                              "after warmup. `none`: constant.",
                              choices=("none", "plateau", "linear", "cosine", "inverse_sqrt"))
    warmup_steps: int = option(0, "Optimizer steps over which the learning rate rises "
                               "linearly (from learning_rate / (warmup_steps + 1)) to "
                               "train.learning_rate before any schedule starts; linear and "
                               "cosine then decay over the rest of the budget (0: none).",
                               min=0)
    min_learning_rate: float = option(0.0, "Floor of the schedules: linear and cosine reach "
                                      "it at the end of the budget, inverse_sqrt and plateau "
                                      "never go below it. At most train.learning_rate.",
                                      min=0.0)
    lr_factor: float = option(0.5, "Learning-rate factor of the plateau schedule (used only "
                              "by plateau).",
                              min=0.0, below=1.0)
    lr_patience: int = option(2, "Validations (epochs, unless train.validate_every) without "
                              "improvement before the plateau schedule lowers the learning "
                              "rate (used only by plateau).", min=0)
    patience: int | None = option(10, "Early stopping: stop after this many validations "
                                  "(epochs, unless train.validate_every) without a better "
                                  "select_by metric (null: never stop early).", min=1)
    max_steps: int | None = option(None, "Budget: end training after this many optimizer "
                                   "steps, as a finished run (validation, best.pt, test "
                                   "scores). A resumed run counts the steps already taken "
                                   "(null: no limit).", min=1)
    max_minutes: float | None = option(None, "Budget: end training once this many minutes of "
                                       "wall-clock time have been spent on it (resumed runs "
                                       "count the time already spent), as a finished run "
                                       "(null: no limit).", min=0.0)
    validate_every: int | None = option(None, "Validate (metrics.jsonl, best.pt, last.pt, "
                                        "early stopping, plateau schedule) every this many "
                                        "optimizer steps instead of once per epoch (null: at "
                                        "the end of every epoch).", min=1)
    tensorboard: bool = option(False, "Also log metrics.jsonl's values, the learning rate and "
                               "the training loss of every step for TensorBoard, in "
                               "RUN_DIR/tensorboard; needs the `tensorboard` extra.")
    keep_checkpoints: int = option(0, "Keep the weights of the last N validations as "
                                   "checkpoints/step-NNNNNNN.pt, for `seq2seq average` "
                                   "(0: only best.pt and last.pt).", min=0)
    init_from: str | None = option(None, "Fine-tuning: start a new run from the weights and "
                                   "vocabularies of this run directory (its best.pt) or "
                                   "checkpoint file, with a fresh optimizer and counters. The "
                                   "model section must match the checkpoint's; characters of "
                                   "the new corpus its vocabulary lacks read as <unk> and are "
                                   "reported (null: start from random weights).")
    label_smoothing: float = option(0.0, "Label smoothing of the training loss: this share "
                                     "of each target's probability is spread over the other "
                                     "target characters (PAD never counts). Validation loss "
                                     "stays plain cross-entropy.", min=0.0, below=1.0)
    select_by: str = option("val_loss", "Validation metric that picks best.pt, counts patience "
                            "and drives the plateau schedule: `val_loss` (lower is better), "
                            "or `exact_match` / `chrf` of greedy decoding on the eval_samples "
                            "sample (higher is better).",
                            choices=("val_loss", "exact_match", "chrf"))
    eval_samples: int | None = option(1000, "Validation pairs decoded greedily each epoch for "
                                      "exact match (a fixed seeded sample; null: all).", min=1)
    show_samples: int = option(5, "Validation translations written to samples/ and shown "
                               "after each epoch.", min=0)
    plot: bool = option(True, "Rewrite curves.png (loss and accuracy per epoch) after every "
                        "epoch; needs the `plot` extra (matplotlib), skipped without it.")
    seed: int = option(42, "Seed of initialisation, dropout and batch order.", min=0)
    threads: int | None = option(None, "CPU threads per process (null: the idle cores, i.e. "
                                 "the cores less the tasks other processes keep running "
                                 "when training starts, at least 1, shared among "
                                 "processes: a thread that shares its core with another "
                                 "job slows every step several times). The run records "
                                 "the count and --resume keeps it unless this is set. "
                                 "Sums round differently on another count: runs meant to "
                                 "be equal to the last digit pin this.",
                                 min=1)
    members: int | None = option(1, "Models trained side by side under one budget, each "
                                 "an ordinary run (RUN_DIR/member-N, seeds train.seed, "
                                 "train.seed + 1, ...; one CPU thread each unless "
                                 "train.threads says otherwise), decoded together as an "
                                 "ensemble: RUN_DIR is what translate, evaluate and serve "
                                 "take (null: one per idle core; 1: a single run, as "
                                 "always).", min=1)
    precision: str = option("fp32", "Arithmetic: bf16 uses autocast on CPU and CUDA where "
                            "PyTorch has a bf16 LSTM there (CPUs with AVX-512, GPUs from "
                            "Ampere on); elsewhere the run trains in fp32 after one "
                            "warning. fp16 only on CUDA.", choices=("fp32", "bf16", "fp16"))
    batching: str = option("mixed", "`mixed`: each batch of batch_size rows joins a few "
                           "random pieces of equal source length, each encoded unpadded "
                           "(exact encoder states, varied batches); `length`: one source "
                           "length per batch; `pad_to_max`: every batch padded to the corpus "
                           "maximum and read whole by the encoder, like the Keras recipe "
                           "(reference mode for benchmarks).",
                           choices=("mixed", "length", "pad_to_max"))


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
