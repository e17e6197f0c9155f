"""The Keras recipe's model: an LSTM encoder whose final (h, c) initialise an LSTM decoder,
with optional attention on top (model/encoder.py, model/decoder.py).

Tensors in, logits out; no I/O. One way in each direction: ``encode`` reads a batch of
sources (with their lengths, never their padding), ``decode`` runs the decoder for any
number of steps from a ``DecoderState``: teacher forcing, the search and the export all
call these two.

Inputs are unit ids (B, T) or one-hot vectors (B, T, F); the input layer turns either into
what the LSTMs read. The recipe reads one-hot vectors (training builds them per batch, as
it always has). With ``model.embedding_dim`` a learned embedding (PAD's row fixed at zero)
takes ids, so a 5,000-character alphabet costs a table lookup instead of a product of a
(B, T, 5000) one-hot by the LSTM's input weights. For a bidirectional encoder the decoder
has ``latent_dim × directions`` units; with ``model.decoder_units`` other than that, a
``Bridge`` maps the encoder's final (h, c) to the decoder's start.

A checkpoint names the parameters as the model did before its encoder and decoder were
modules of their own (``encoder.weight_ih_l0``, ``output.weight``): ``state_dict`` and
``load_state_dict`` translate (``SAVED_NAMES``), so every checkpoint keeps loading.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_cli.config import ModelConfig
from seq2seq_cli.data.vocabulary import PAD_ID
from seq2seq_cli.model.bridge import Bridge
from seq2seq_cli.model.decoder import Decoded, Decoder, DecoderState, decoder_units
from seq2seq_cli.model.encoder import Encoded, Encoder, Reading, encoder_units, read_by_length

__all__ = ["Decoded", "DecoderState", "Encoded", "Seq2Seq", "build_model", "decoder_units",
           "encoder_units", "has_bridge"]

DECODER_PARTS = 2  # halves; more parts measured no faster on fra-eng
# (module's name, checkpoint's name) of each parameter prefix, in the checkpoint's order.
SAVED_NAMES = (("encoder.lstm.", "encoder."), ("decoder.lstm.", "decoder."),
               ("decoder.output.", "output."), ("decoder.attention.", "attention."),
               ("decoder.combine.", "combine."))


def has_bridge(config: ModelConfig) -> bool:
    """Whether a learned bridge sits between the encoder's final state and the decoder."""
    return decoder_units(config) != encoder_units(config)


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig, source_features: int, target_features: int):
        super().__init__()
        self.source_features, self.target_features = source_features, target_features
        embedding = config.embedding_dim
        # Made in the order of the model's first layout (encoder LSTM, decoder LSTM, output,
        # attention), so that a seed still draws the same initial values.
        self.encoder = Encoder(config, embedding or source_features)
        self.decoder = Decoder(config, embedding or target_features, target_features)
        # Made last, for the same reason; absent from the recipe's state dict, so its
        # checkpoints load as they are. Row PAD_ID stays zero: padding adds nothing.
        self.source_embedding = self.target_embedding = self.bridge = None
        if embedding is not None:
            self.source_embedding = nn.Embedding(source_features + 1, embedding,
                                                 padding_idx=PAD_ID)  # (Vs, E), one per id
            self.target_embedding = nn.Embedding(target_features + 1, embedding,
                                                 padding_idx=PAD_ID)  # (Vt, E)
        if has_bridge(config):
            self.bridge = Bridge(config.num_layers, self.encoder_units, self.units)
        self.register_state_dict_post_hook(_to_saved_names)
        self.register_load_state_dict_pre_hook(_from_saved_names)

    # ------------------------------------------------------------ what callers read

    @property
    def units(self) -> int:
        """The decoder's width."""
        return self.decoder.units

    @property
    def encoder_units(self) -> int:
        return self.decoder.memory_units

    @property
    def num_layers(self) -> int:
        return self.encoder.num_layers

    @property
    def reverse_source(self) -> bool:
        return self.encoder.reverse_source

    @property
    def input_feeding(self) -> bool:
        return self.decoder.input_feeding

    @property
    def attention(self) -> nn.Module | None:
        return self.decoder.attention

    @property
    def batch_invariant(self) -> bool:
        """Logits row by row (model/row_wise.py), for batch-invariant decoding; not saved."""
        return self.decoder.batch_invariant

    @batch_invariant.setter
    def batch_invariant(self, value: bool) -> None:
        self.decoder.batch_invariant = value

    @property
    def reads_ids(self) -> bool:
        """Whether unit ids (B, T) are this model's fast input (embeddings); otherwise
        one-hot vectors (B, T, F) are. Either is accepted."""
        return self.source_embedding is not None

    # ------------------------------------------------------------ the two ways through

    def encode(self, encoder_input: torch.Tensor,
               source_lengths: torch.Tensor | None = None) -> Encoded:
        """(B, S) source ids or (B, S, Fs) one-hot sources → the decoder's initial state
        (and, with attention, its view of the encoder's outputs).

        With ``source_lengths`` (B,) no source reads its padding (model/encoder.py,
        ``read_by_length``); without, the encoder reads the batch as it is, padding
        included (the Keras recipe's layout; exact when there is no padding).
        """
        reading = (self._read(encoder_input) if source_lengths is None
                   else read_by_length(self._read, encoder_input, source_lengths))
        final = reading.final if self.bridge is None else self.bridge(reading.final)
        return self.decoder.remember(final, reading.outputs, reading.mask)  # (L, B, D) ...

    def start_state(self, encoded: Encoded) -> DecoderState:
        return self.decoder.start_state(encoded)

    def decode(self, decoder_input: torch.Tensor, state: DecoderState,
               encoded: Encoded) -> Decoded:
        """(B, T) unit ids or (B, T, Ft) one-hot decoder inputs → logits (B, T, Ft), the
        state after T steps and, with attention, the weights (B, T, S) of every step over
        the sources."""
        vectors = self._vectors(decoder_input, self.target_embedding,
                                self.target_features)  # (B, T, Ft or E)
        return self.decoder(vectors, state, encoded)

    def forward(self, encoder_input: torch.Tensor, decoder_input: torch.Tensor,
                source_lengths: torch.Tensor | None = None,
                decoder_steps: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: logits (B, T, Ft) for every decoder input step.

        ``source_lengths`` as ``encode`` takes them. With ``decoder_steps`` (B,) the decoder
        skips most of the padding: the longer and the shorter half of the batch are decoded
        separately, each only as far as its own longest row, so random batches waste far
        fewer padded steps. Logits at skipped steps are zero; the loss ignores them anyway.
        """
        encoded = self.encode(encoder_input, source_lengths)
        if decoder_steps is None:
            return self.decode(decoder_input, self.start_state(encoded), encoded).logits
        batch, steps = decoder_input.shape[:2]
        order = torch.argsort(decoder_steps, descending=True, stable=True)  # (B,)
        logits = None
        for rows in torch.tensor_split(order, DECODER_PARTS):
            if len(rows) == 0:
                continue
            part_steps = int(decoder_steps[rows].max())
            part = encoded.select(rows.to(encoded.final[0].device))
            part_logits = self.decode(decoder_input[rows, :part_steps], self.start_state(part),
                                      part).logits  # (n, t, Ft)
            if logits is None:  # the parts' dtype: bf16 or fp16 under autocast
                logits = part_logits.new_zeros(batch, steps, part_logits.shape[2])  # (B, T, Ft)
            logits[rows, :part_steps] = part_logits  # (n, t, Ft)
        return logits

    # ------------------------------------------------------------ input layer

    def _read(self, encoder_input: torch.Tensor) -> Reading:
        """Run the encoder on sources that are as long as the batch (Keras: or padded)."""
        vectors = self._vectors(encoder_input, self.source_embedding,
                                self.source_features)  # (B, S, Fs or E)
        reading = self.encoder(vectors)
        if self.attention is None:
            return Reading(reading.final)
        # PAD is an all-zero one-hot row or PAD_ID; only the Keras layout passes any here.
        mask = (encoder_input.amax(dim=2) > 0 if encoder_input.dim() == 3
                else encoder_input != PAD_ID)  # (B, S)
        return Reading(reading.final, reading.outputs, mask)

    def _vectors(self, inputs: torch.Tensor, embedding: nn.Embedding | None,
                 features: int) -> torch.Tensor:
        """(B, T) unit ids or (B, T, F) one-hot vectors → (B, T, F or E) LSTM inputs."""
        if inputs.dim() == 3:
            if embedding is None:
                return inputs
            # One-hot rows pick embedding rows exactly (column k is unit id k + 1).
            return inputs.to(embedding.weight.dtype) @ embedding.weight[1:]  # (B, T, E)
        if embedding is not None:
            return embedding(inputs)  # (B, T, E)
        dtype = self.decoder.output.weight.dtype
        vectors = F.one_hot((inputs - 1).clamp(min=0), features).to(dtype)  # (B, T, F)
        return vectors * (inputs != PAD_ID)[..., None].to(dtype)  # PAD: an all-zero row


def _renamed(name: str, prefix: str, pairs: tuple[tuple[str, str], ...]) -> str:
    rest = name[len(prefix):]
    for old, new in pairs:
        if rest.startswith(old):
            return prefix + new + rest[len(old):]
    return name


def _to_saved_names(module: nn.Module, state_dict: dict[str, Any], prefix: str,
                    local_metadata: dict) -> None:
    """State-dict hook: the module's names → the checkpoint's, in place and in order."""
    items = [(_renamed(name, prefix, SAVED_NAMES) if name.startswith(prefix) else name, value)
             for name, value in state_dict.items()]
    state_dict.clear()
    state_dict.update(items)


def _from_saved_names(module: nn.Module, state_dict: dict[str, Any], prefix: str,
                      *args: Any) -> None:
    """Load pre-hook: the checkpoint's names → the module's, before the layers load."""
    saved = tuple((new, old) for old, new in SAVED_NAMES)
    items = [(_renamed(name, prefix, saved)
              if name.startswith(prefix) and not name.startswith(
                  tuple(prefix + old for old, _ in SAVED_NAMES)) else name, value)
             for name, value in state_dict.items()]
    state_dict.clear()
    state_dict.update(items)


def build_model(config: ModelConfig, source_features: int, target_features: int) -> Seq2Seq:
    model = Seq2Seq(config, source_features, target_features)
    if config.init == "keras":
        keras_initialization(model)
    return model


def keras_initialization(model: Seq2Seq) -> None:
    """The initial weights of Keras' LSTM and Dense layers, which the recipe trains from.

    Measured: lower validation loss at every epoch than PyTorch's uniform ±1/√units (fra-eng
    after 8 epochs 1.415 vs 1.436-1.459; the dates demo after 4 epochs 0.011 vs 0.036).
    Attention's layers, made last, are initialised last, as Dense layers; then embeddings
    as Keras' Embedding (uniform in ±0.05, PAD's row zero) and the bridge as Dense layers.
    """
    with torch.no_grad():
        for lstm in (model.encoder.lstm, model.decoder.lstm):
            units = lstm.hidden_size
            for name, weight in lstm.named_parameters():
                if name.startswith("weight_ih"):  # (4H, inputs): Keras' kernel, transposed
                    nn.init.xavier_uniform_(weight)
                elif name.startswith("weight_hh"):  # (4H, H): Keras' recurrent kernel, transposed
                    nn.init.orthogonal_(weight)
                else:
                    nn.init.zeros_(weight)
                    if name.startswith("bias_ih"):  # gates i, f, g, o: Keras' unit_forget_bias
                        weight[units:2 * units] = 1.0  # bias_hh stays 0, so the sum is 1
        nn.init.xavier_uniform_(model.decoder.output.weight)
        nn.init.zeros_(model.decoder.output.bias)
        if model.attention is not None:
            for layer in (*model.attention.children(), model.decoder.combine):
                nn.init.xavier_uniform_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        for embedding in (model.source_embedding, model.target_embedding):
            if embedding is not None:  # Keras' Embedding: uniform in ±0.05
                nn.init.uniform_(embedding.weight, -0.05, 0.05)
                embedding.weight[PAD_ID] = 0.0
        if model.bridge is not None:
            model.bridge.keras_initialization()
