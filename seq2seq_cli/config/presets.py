"""The starting points ``seq2seq config init`` writes: plain data, one dict per preset.

Each preset holds the config values it sets, by section; every other key keeps its
default. ``NOTES`` are the comments written above keys whose config help would not say
why the preset sets them (the others get the first sentence of their help).
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The Keras character-level recipe, as the defaults and configs/fra-eng.yaml have it.
    "recipe": {
        "data": {"path": "data/dates.tsv", "val_fraction": 0.1},
        "model": {"latent_dim": 256, "num_layers": 1, "bidirectional": False,
                  "attention": "none"},
        "train": {"epochs": 100, "batch_size": 64, "optimizer": "rmsprop",
                  "learning_rate": 0.001, "lr_schedule": "none", "patience": 10},
    },
    # Beyond the recipe: embeddings, a bidirectional encoder with a bridge to the
    # decoder, attention, dropout, adam with a warmup and a linear decay to the budget.
    "quality": {
        "data": {"path": "data/dates.tsv", "val_fraction": 0.1},
        "model": {"latent_dim": 128, "embedding_dim": 64, "bidirectional": True,
                  "decoder_units": 256, "attention": "general", "output_dropout": 0.2},
        "train": {"epochs": 20, "batch_size": 32, "optimizer": "adam",
                  "learning_rate": 0.003, "clip_norm": 1.0, "lr_schedule": "linear",
                  "warmup_steps": 200, "patience": None, "select_by": "exact_match"},
    },
}

DESCRIPTIONS = {
    "recipe": "the Keras recipe: one-hot characters, one LSTM layer of 256 units on each "
              "side, rmsprop at a constant rate",
    "quality": "learned embeddings, a bidirectional encoder bridged to the decoder, "
               "attention and dropout, adam warmed up and decayed linearly to the end of "
               "the budget, best.pt chosen by exact match",
}

# With --minutes the time budget ends the run, so the epoch limit must not come first.
EPOCHS_UNDER_A_TIME_BUDGET = 1000
# From this budget on, the quality preset trains one member per idle core (train.members:
# null) instead of one model on every core. Measured (docs/quality.md#ensembles, French
# phonemes -> spelling, 2 cores): at 20 minutes two members 48.6 % exact against 44.9 %
# for one model; at 5 minutes one model was ahead (43.8 against 42.2), still learning.
MEMBERS_FROM_MINUTES = 20.0

# The quality preset's model by budget: from LARGE_FROM_MINUTES on, each model (each
# member, one core each) gets LARGE_MODEL, twice the preset's widths (4 times its
# parameters). Measured on one thread per run, the budget in CPU minutes
# (docs/quality.md#a-model-sized-to-the-budget): at 5 minutes the preset is ahead (Swedish
# G2P 77.0 against 73.3 % exact, Dutch G2P 58.3 against 50.8: the wide model gets through
# 2 epochs, 1); at 20 minutes the wide one is (Swedish 79.3 against 78.3, French P2G 46.1
# against 42.1), where the preset has stopped gaining.
LARGE_FROM_MINUTES = 20.0
LARGE_MODEL = {"latent_dim": 256, "embedding_dim": 128, "decoder_units": 512}
LARGE_REASON = ("Twice the preset's width from 20 minutes on: a longer budget gets a larger "
                "model (French P2G at 20 minutes on one core: 46.1 against 42.1 % exact for "
                "the preset's 128; at 5 minutes the preset is ahead).")

# Comments by preset (and "any": whatever the preset), looked up before the config help.
NOTES: dict[str, dict[str, str]] = {
    "any": {
        "data.path": "Your corpus: `source<TAB>target` per line (the bundled demo until "
                     "you change it).",
        "data.val_fraction": "Share of the pairs held out to validate on (or set "
                             "data.val_path).",
        "model.latent_dim": "LSTM units per direction of the encoder.",
        "model.num_layers": "Stacked LSTM layers on each side.",
        "model.bidirectional": "Read the source in both directions.",
        "model.attention": "Attention of the decoder over the encoder's outputs (none, "
                           "dot, general, additive).",
        "model.output_dropout": "Dropout on what the output layer reads.",
        "model.embedding_dim": "Learned embeddings instead of one-hot inputs: the input "
                               "product no longer grows with the alphabet.",
        "model.decoder_units": "Decoder width; a learned bridge hands it the encoder's "
                               "joined states.",
        "train.epochs": "Most epochs to train.",
        "train.batch_size": "Pairs per optimizer step.",
        "train.optimizer": "rmsprop, adam or sgd.",
        "train.learning_rate": "The rate the schedule starts from.",
        "train.clip_norm": "Clip the gradient norm (null: no clipping).",
        "train.warmup_steps": "Steps over which the rate rises to train.learning_rate.",
        "train.patience": "Early stopping after this many validations without "
                          "improvement (null: never).",
        "train.select_by": "The validation metric that picks best.pt.",
        "train.max_minutes": "The budget: training ends once this many minutes have been "
                             "spent on it.",
    },
    "recipe": {
        "train.lr_schedule": "A constant rate, as in Keras; `linear` decays it to the end "
                             "of the budget.",
    },
    "quality": {
        "train.epochs": "Without a budget, the linear schedule decays over this many "
                        "epochs.",
        "train.lr_schedule": "Linear decay to train.min_learning_rate at the end of the "
                             "budget (max_steps, else max_minutes, else epochs).",
        "train.patience": "null: no early stopping, so the schedule runs to its end.",
    },
    "minutes": {
        "train.epochs": "High on purpose: train.max_minutes ends the run.",
    },
    "members": {
        "train.members": "One model per idle core, side by side, decoded together: from "
                         "20 minutes on, measured better than one model on every core "
                         "(French P2G 48.6 against 44.9 % exact at 20 minutes; at 5 "
                         "minutes one model is ahead).",
    },
}
