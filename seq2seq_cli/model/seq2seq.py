"""The Keras recipe's model: an LSTM encoder whose final (h, c) initialise an LSTM decoder,
with optional attention on top.

Tensors in, logits out; no I/O. For a bidirectional encoder the forward and backward
final states of each layer are concatenated, so the decoder has
``latent_dim × directions`` units (the rule ``decoder_units`` states once); the encoder's
outputs have that same width.

With ``model.attention`` the decoder also looks back at every encoder output (Luong et al.
2015). The fast form keeps the fused decoder LSTM over all target steps: attention of all
decoder outputs over all encoder outputs is one batched product, and the attentional
vector ``tanh(W_c [context; h_t] + b_c)`` feeds the output layer. ``input_feeding`` adds
the previous attentional vector to the next decoder input, which needs a loop over steps.

W_c [context; h_t] is computed as ``Σ_s a_ts (W_c,context m_s) + W_c,h h_t``: the memory's
projection ``values`` is made once per source rather than once per target step, which
saves most of the cost of the context half (targets are longer than sources, and every
step would otherwise project its own context).

Inputs are token ids (B, T) or one-hot vectors (B, T, F); the input layer turns either into
what the LSTM reads. The recipe reads one-hot vectors (training builds them per batch, as
it always has). With ``model.embedding_dim`` a learned embedding (PAD's row fixed at zero)
takes ids, so a 5,000-character alphabet costs a table lookup instead of a product of a
(B, T, 5000) one-hot by the LSTM's input weights. With ``model.decoder_units`` other than
the encoder's width, a ``Bridge`` maps the encoder's final (h, c) to the decoder's start.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from seq2seq_cli.config import ModelConfig
from seq2seq_cli.data.vocabulary import PAD_ID
from seq2seq_cli.model.attention import Attention
from seq2seq_cli.model.bridge import Bridge
from seq2seq_cli.model.row_wise import row_wise_linear

DECODER_PARTS = 2  # halves; more parts measured no faster on fra-eng
State = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (num_layers, B, decoder_units)


def encoder_units(config: ModelConfig) -> int:
    """Width of the encoder's joined final state and of each of its outputs."""
    return config.latent_dim * (2 if config.bidirectional else 1)


def decoder_units(config: ModelConfig) -> int:
    return encoder_units(config) if config.decoder_units is None else config.decoder_units


def has_bridge(config: ModelConfig) -> bool:
    """Whether a learned bridge sits between the encoder's final state and the decoder."""
    return decoder_units(config) != encoder_units(config)


@dataclass(frozen=True)
class Encoded:
    """What the decoder needs to know about a batch of sources."""

    final: State  # the decoder's initial (h, c), each (L, B, D)
    # With attention, from the encoder outputs (the memory, zero at padding):
    keys: torch.Tensor | None = None  # (B, S, D) the memory as the score function reads it
    values: torch.Tensor | None = None  # (B, S, D) the memory times W_c's context half
    mask: torch.Tensor | None = None  # (B, S) bool, True at real source units

    def select(self, rows: torch.Tensor) -> Encoded:
        """The sources at ``rows`` (B',), in that order; a row may repeat (beams)."""
        # index_select, not t[rows]: its backward (index_add) is several times faster than
        # that of advanced indexing (index_put with accumulate), measured on CPU.
        return Encoded((self.final[0].index_select(1, rows), self.final[1].index_select(1, rows)),
                       *(None if t is None else t.index_select(0, rows)
                         for t in (self.keys, self.values, self.mask)))

    @property
    def batch_size(self) -> int:
        return self.final[0].shape[1]


@dataclass(frozen=True)
class DecoderState:
    """The decoder's recurrent state between calls of ``Seq2Seq.decode``."""

    hidden: State  # (h, c), each (L, B, D)
    feed: torch.Tensor | None = None  # (B, D) last attentional vector (input feeding only)

    def select(self, rows: torch.Tensor) -> DecoderState:
        return DecoderState((self.hidden[0][:, rows], self.hidden[1][:, rows]),
                            None if self.feed is None else self.feed[rows])


@dataclass(frozen=True)
class Decoded:
    logits: torch.Tensor  # (B, T, Ft)
    state: DecoderState  # after the T steps
    attention: torch.Tensor | None  # (B, T, S) weights over the sources; None without attention


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig, source_features: int, target_features: int):
        super().__init__()
        self.num_layers = config.num_layers
        self.directions = 2 if config.bidirectional else 1
        self.reverse_source = config.reverse_source
        self.input_feeding = config.input_feeding
        self.output_dropout = config.output_dropout
        self.encoder_output_dropout = config.encoder_output_dropout
        self.units = units = decoder_units(config)
        self.memory_units = memory_units = encoder_units(config)
        self.source_features, self.target_features = source_features, target_features
        embedding = config.embedding_dim
        dropout = config.dropout if config.num_layers > 1 else 0.0
        self.encoder = nn.LSTM(embedding or source_features, config.latent_dim,
                               config.num_layers, batch_first=True, dropout=dropout,
                               bidirectional=config.bidirectional)
        decoder_inputs = (embedding or target_features) + (units if config.input_feeding else 0)
        self.decoder = nn.LSTM(decoder_inputs, units, config.num_layers,
                               batch_first=True, dropout=dropout)
        self.output = nn.Linear(units, target_features)
        self.batch_invariant = False  # logits row by row (model/row_wise.py); not saved
        # Made after the plain model's layers, so that without attention the parameters,
        # their names and their random initial values are those of the plain model.
        self.attention = (Attention(config.attention, units, memory_units)
                          if config.attention != "none" else None)
        if self.attention is not None:
            self.combine = nn.Linear(memory_units + units, units)  # W_c over [context; h_t]
        # Made last, for the same reason; absent from the recipe's state dict, so its
        # checkpoints load as they are. Row PAD_ID stays zero: padding adds nothing.
        self.source_embedding = self.target_embedding = self.bridge = None
        if embedding is not None:
            self.source_embedding = nn.Embedding(source_features + 1, embedding,
                                                 padding_idx=PAD_ID)  # (Vs, E), one per id
            self.target_embedding = nn.Embedding(target_features + 1, embedding,
                                                 padding_idx=PAD_ID)  # (Vt, E)
        if has_bridge(config):
            self.bridge = Bridge(config.num_layers, memory_units, units)

    # ------------------------------------------------------------ input layer

    @property
    def reads_ids(self) -> bool:
        """Whether token ids (B, T) are this model's fast input (embeddings); otherwise
        one-hot vectors (B, T, F) are. Either is accepted."""
        return self.source_embedding is not None

    def _vectors(self, inputs: torch.Tensor, embedding: nn.Embedding | None,
                 features: int) -> torch.Tensor:
        """(B, T) token ids or (B, T, F) one-hot vectors → (B, T, F or E) LSTM inputs."""
        if inputs.dim() == 3:
            if embedding is None:
                return inputs
            # One-hot rows pick embedding rows exactly (column k is token id k + 1).
            return inputs.to(embedding.weight.dtype) @ embedding.weight[1:]  # (B, T, E)
        if embedding is not None:
            return embedding(inputs)  # (B, T, E)
        dtype = self.output.weight.dtype
        vectors = F.one_hot((inputs - 1).clamp(min=0), features).to(dtype)  # (B, T, F)
        return vectors * (inputs != PAD_ID)[..., None].to(dtype)  # PAD: an all-zero row

    # ------------------------------------------------------------ encoder

    def encode(self, encoder_input: torch.Tensor) -> Encoded:
        """(B, S) source ids or (B, S, Fs) one-hot sources → the decoder's initial state
        (and, with attention, the memory it attends to)."""
        return self._with_memory(*self._read(encoder_input))

    def encode_exact(self, encoder_input: torch.Tensor, source_lengths: torch.Tensor) -> Encoded:
        """Decoder start states for sources of mixed lengths, none of them reading padding.

        encoder_input (B, S) ids or (B, S, Fs) one-hot, right-padded; source_lengths (B,).
        One encoder call per distinct length, on that group's unpadded slice: exact final
        states at the speed of the fused LSTM kernel (``pack_padded_sequence`` is about 2×
        slower on CPU).
        """
        if bool((source_lengths == encoder_input.shape[1]).all()):
            return self.encode(encoder_input)  # one length: nothing to split
        groups = [torch.nonzero(source_lengths == n)[:, 0] for n in source_lengths.unique()]
        return self.encode_groups([(rows, encoder_input[rows, :int(source_lengths[rows[0]])])
                                   for rows in groups])

    def encode_groups(self, groups: list[tuple[torch.Tensor, torch.Tensor]]) -> Encoded:
        """Encode groups of equal-length sources, then return them in batch order.

        Each group is (rows (n,) batch positions, encoder input (n, S_group) ids or
        (n, S_group, Fs) one-hot, unpadded);
        together the rows are a permutation of range(B). With attention, each group's
        outputs are right-padded with zeros to the longest group and masked.
        """
        read = [self._read(group_input) for _, group_input in groups]
        order = torch.argsort(torch.cat([rows for rows, _ in groups]))  # (B,)
        h = torch.cat([final[0] for final, _, _ in read], dim=1)[:, order]  # (L, B, D)
        c = torch.cat([final[1] for final, _, _ in read], dim=1)[:, order]  # (L, B, D)
        if self.attention is None:
            return self._with_memory((h, c), None, None)
        longest = max(memory.shape[1] for _, memory, _ in read)
        memory = torch.cat([F.pad(memory, (0, 0, 0, longest - memory.shape[1]))
                            for _, memory, _ in read]).index_select(0, order)  # (B, S, D)
        mask = torch.cat([F.pad(mask, (0, longest - mask.shape[1]), value=False)
                          for _, _, mask in read]).index_select(0, order)  # (B, S)
        return self._with_memory((h, c), memory, mask)

    def _read(self, encoder_input: torch.Tensor) -> tuple[State, torch.Tensor | None,
                                                          torch.Tensor | None]:
        """Run the encoder: final (h, c), and with attention its outputs (B, S, D) and the
        mask (B, S) of real units.

        With ``reverse_source`` the encoder reads each source last character first. Every
        caller but the Keras layout passes unpadded sources here, so reversing the time
        axis reverses exactly the real units.
        """
        vectors = self._vectors(encoder_input, self.source_embedding,
                                self.source_features)  # (B, S, Fs or E)
        reversed_input = vectors.flip(1) if self.reverse_source else vectors
        outputs, (h, c) = self.encoder(reversed_input)  # (B, S, M), each (L * dirs, B, H)
        final = (self._join_directions(h), self._join_directions(c))
        if self.attention is None:
            return final, None, None
        if self.reverse_source:
            outputs = outputs.flip(1)  # (B, S, M): position s is source character s again
        # PAD is an all-zero one-hot row or PAD_ID; only the Keras layout passes any here.
        mask = (encoder_input.amax(dim=2) > 0 if encoder_input.dim() == 3
                else encoder_input != PAD_ID)  # (B, S)
        return final, outputs, mask

    def _with_memory(self, final: State, memory: torch.Tensor | None,
                     mask: torch.Tensor | None) -> Encoded:
        if self.bridge is not None:
            final = self.bridge(final)  # each (L, B, M) → (L, B, D)
        if self.attention is None:
            return Encoded(final)
        memory = dropout(memory, self.encoder_output_dropout, self.training)
        context_weight = self.combine.weight[:, :self.memory_units]  # (D, M) of [context | h]
        return Encoded(final, self.attention.keys(memory), F.linear(memory, context_weight),
                       mask)  # keys, values (B, S, D) (keys (B, S, M) for dot)

    # ------------------------------------------------------------ decoder

    def start_state(self, encoded: Encoded) -> DecoderState:
        """The decoder's state before its first step: the encoder's final (h, c), through
        the bridge when there is one."""
        if not self.input_feeding:
            return DecoderState(encoded.final)
        h = encoded.final[0]
        return DecoderState(encoded.final, h.new_zeros(h.shape[1], h.shape[2]))  # (B, D)

    def decode(self, decoder_input: torch.Tensor, state: DecoderState,
               encoded: Encoded) -> Decoded:
        """(B, T) token ids or (B, T, Ft) one-hot decoder inputs → logits (B, T, Ft), the
        state after T steps and, with attention, the weights (B, T, S) of every step over
        the sources."""
        decoder_input = self._vectors(decoder_input, self.target_embedding,
                                      self.target_features)  # (B, T, Ft or E)
        if self.input_feeding:
            return self._decode_feeding(decoder_input, state, encoded)
        outputs, hidden = self.decoder(decoder_input, state.hidden)  # (B, T, D)
        if self.attention is None:
            return Decoded(self._logits(self._drop(outputs)), DecoderState(hidden), None)
        attentional, weights = self._attend(outputs, encoded)  # (B, T, D), (B, T, S)
        return Decoded(self._logits(self._drop(attentional)), DecoderState(hidden), weights)

    def _decode_feeding(self, decoder_input: torch.Tensor, state: DecoderState,
                        encoded: Encoded) -> Decoded:
        """One LSTM call per step: each step reads the previous attentional vector.
        ``decoder_input`` (B, T, Ft or E) is already vectors."""
        hidden, feed = state.hidden, state.feed  # feed (B, D)
        attentional, weights = [], []
        for t in range(decoder_input.shape[1]):
            step_input = torch.cat([decoder_input[:, t:t + 1],
                                    feed[:, None].to(decoder_input.dtype)],
                                   dim=2)  # (B, 1, Ft or E + D)
            output, hidden = self.decoder(step_input, hidden)  # (B, 1, D)
            step_attentional, step_weights = self._attend(output, encoded)  # (B, 1, D), (B, 1, S)
            step_attentional = self._drop(step_attentional)
            feed = step_attentional[:, 0]  # (B, D)
            attentional.append(step_attentional)
            weights.append(step_weights)
        logits = self._logits(torch.cat(attentional, dim=1))  # (B, T, Ft)
        return Decoded(logits, DecoderState(hidden, feed), torch.cat(weights, dim=1))

    def _attend(self, outputs: torch.Tensor,
                encoded: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        """Decoder outputs (B, T, D) → attentional vectors (B, T, D) and weights (B, T, S)."""
        weights = self.attention(outputs, encoded.keys, encoded.mask)  # (B, T, S)
        projected_context = torch.bmm(weights.to(encoded.values.dtype),
                                      encoded.values)  # (B, T, D) = W_c,context · context
        state_weight = self.combine.weight[:, self.memory_units:]  # (D, D) of [context | h]
        attentional = torch.tanh(projected_context
                                 + F.linear(outputs, state_weight, self.combine.bias))
        return attentional, weights  # (B, T, D), (B, T, S)

    def _logits(self, vectors: torch.Tensor) -> torch.Tensor:
        if self.batch_invariant:
            return row_wise_linear(vectors, self.output)
        return self.output(vectors)

    def _drop(self, vectors: torch.Tensor) -> torch.Tensor:
        return dropout(vectors, self.output_dropout, self.training)

    # ------------------------------------------------------------ teacher forcing

    def forward(self, encoder_input: torch.Tensor, decoder_input: torch.Tensor,
                source_lengths: torch.Tensor | None = None,
                decoder_steps: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher forcing: logits (B, T, Ft) for every decoder input step.

        With ``source_lengths`` the encoder never reads padding (see ``encode_exact``);
        without, it reads the batch as it is, padding included (the Keras recipe). With
        ``decoder_steps`` (B,) the decoder skips most of the padding (``decode_in_parts``);
        logits at skipped steps are zero, and the loss ignores them anyway.
        """
        encoded = (self.encode(encoder_input) if source_lengths is None
                   else self.encode_exact(encoder_input, source_lengths))
        if decoder_steps is None:
            return self.decode(decoder_input, self.start_state(encoded), encoded).logits
        return self.decode_in_parts(decoder_input, encoded, decoder_steps)

    def decode_in_parts(self, decoder_input: torch.Tensor, encoded: Encoded,
                        decoder_steps: torch.Tensor) -> torch.Tensor:
        """Decode the longer and the shorter half of the batch separately, each only as far
        as its own longest row: random batches waste far fewer padded steps."""
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

    def _join_directions(self, state: torch.Tensor) -> torch.Tensor:
        if self.directions == 1:
            return state
        layers, batch, units = self.num_layers, state.shape[1], state.shape[2]
        per_layer = state.view(layers, 2, batch, units)  # (L, dirs, B, H)
        # [forward ; backward] per layer, as the decoder's (L, B, 2H) state.
        return per_layer.permute(0, 2, 1, 3).reshape(layers, batch, 2 * units)


def dropout(vectors: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with a mask drawn by ``torch.rand``: the same distribution as
    ``F.dropout``, 3× faster on CPU (whose Bernoulli sampler dominated the step time of a
    model with dropout, measured). Nothing is drawn when off, so the plain model's use of
    the random generator is unchanged."""
    if not training or p == 0:
        return vectors
    keep = torch.rand_like(vectors) >= p  # (...) True with probability 1 - p
    return vectors * keep * (1.0 / (1.0 - p))


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
        for lstm in (model.encoder, model.decoder):
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
        nn.init.xavier_uniform_(model.output.weight)
        nn.init.zeros_(model.output.bias)
        if model.attention is not None:
            for layer in (*model.attention.children(), model.combine):
                nn.init.xavier_uniform_(layer.weight)
                if layer.bias is not None:
                    nn.init.zeros_(layer.bias)
        for embedding in (model.source_embedding, model.target_embedding):
            if embedding is not None:  # Keras' Embedding: uniform in ±0.05
                nn.init.uniform_(embedding.weight, -0.05, 0.05)
                embedding.weight[PAD_ID] = 0.0
        if model.bridge is not None:
            model.bridge.keras_initialization()
