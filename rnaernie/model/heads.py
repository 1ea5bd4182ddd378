"""Task heads on the RNAErnie encoder. Each keeps the encoder at ``self.ernie``.

* :class:`RnaErnieForPreTraining` — MLM over the 39-token vocabulary + RNA-type from [CLS].
* :class:`RnaErnieForMaskedLM` — MLM only.
* :class:`RnaErnieForSequenceClassification` — pooled [CLS] → ``num_labels``.
* :class:`RnaErnieForTokenClassification` — every token → ``num_labels``.
* :class:`RnaErnieForContactPrediction` — (B, L, L) pair logits over nucleotide positions.
* :class:`RnaErnieForInteraction` — two sequences (miRNA, target), encoded separately (two-tower).

Loss conventions: labels of -100 are ignored; classification losses are cross-entropy, except
``num_labels == 1`` (regression, MSE) and the contact head (binary cross-entropy with logits).

Example:
    >>> import torch
    >>> from rnaernie.model import RnaErnieConfig
    >>> model = RnaErnieForPreTraining(RnaErnieConfig.preset("tiny"))
    >>> ids = torch.tensor([[2, 35, 4, 37, 38, 3]])
    >>> labels = torch.tensor([[-100, -100, 36, -100, -100, -100]])
    >>> out = model(ids, labels=labels, type_labels=torch.tensor([9]))
    >>> out.logits.shape, out.type_logits.shape
    (torch.Size([1, 6, 39]), torch.Size([1, 28]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..vocab import IND_ID
from .config import RnaErnieConfig
from .encoder import _ACTIVATIONS, RnaErnieModel, RnaErnieModelOutput
from .pretrained import RnaErniePreTrainedModel

IGNORE_INDEX = -100


@dataclass
class RnaErniePreTrainingOutput:
    """``loss`` = mlm_loss + type_loss (those given); ``logits`` (B, L, V); ``type_logits`` (B, T)."""

    loss: Tensor | None
    mlm_loss: Tensor | None
    type_loss: Tensor | None
    logits: Tensor
    type_logits: Tensor
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None


@dataclass
class RnaErnieHeadOutput:
    """``logits``: (B, V) / (B, L, V) / (B, num_labels) / (B, L, num_labels) / (B, L, L) by head."""

    loss: Tensor | None
    logits: Tensor
    hidden_states: tuple[Tensor, ...] | None = None
    attentions: tuple[Tensor, ...] | None = None
    pair_mask: Tensor | None = None


def _ce(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over labels != -100 (0 with a gradient path when there are none)."""
    flat = labels.reshape(-1)
    if not bool((flat != IGNORE_INDEX).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), flat, ignore_index=IGNORE_INDEX
    )


def _classification_loss(logits: Tensor, labels: Tensor, num_labels: int) -> Tensor:
    if num_labels == 1:
        return F.mse_loss(logits.squeeze(-1).float(), labels.to(logits.dtype))
    return _ce(logits, labels.long())


def _head_dropout(config: RnaErnieConfig) -> nn.Dropout:
    """Dropout before a task head: ``classifier_dropout``, else the hidden dropout."""
    p = (
        config.classifier_dropout
        if config.classifier_dropout is not None
        else config.hidden_dropout
    )
    return nn.Dropout(p)


def masked_mean(h: Tensor, mask: Tensor) -> Tensor:
    """(B, L, C), (B, L) → (B, C): mean over positions where ``mask`` is nonzero."""
    m = mask.to(h.dtype).unsqueeze(-1)  # (B, L, 1)
    return (h * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


class RnaErnieMLMHead(nn.Module):
    """dense → act → LayerNorm → decoder tied to the word embeddings (+ own bias): (B, L, C) → (B, L, V)."""

    def __init__(self, config: RnaErnieConfig):
        super().__init__()
        C = config.hidden_size
        self.transform = nn.Linear(C, C)
        self.act = _ACTIVATIONS[config.hidden_act]
        self.layer_norm = nn.LayerNorm(C, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h: Tensor, word_embeddings: Tensor) -> Tensor:
        h = self.layer_norm(self.act(self.transform(h)))  # (B, L, C)
        return F.linear(h, word_embeddings, self.bias)  # (B, L, V)


# ----------------------------------------------------------------------------- pretraining


class RnaErnieForMaskedLM(RnaErniePreTrainedModel):
    """Masked-language-model head. ``labels`` (B, L): token ids at masked positions, -100 elsewhere."""

    def __init__(self, config: RnaErnieConfig):
        super().__init__(config)
        self.ernie = RnaErnieModel(config, add_pooling_layer=False)
        self.mlm_head = RnaErnieMLMHead(config)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        labels: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> RnaErnieHeadOutput:
        out = self.ernie(
            input_ids, attention_mask, token_type_ids, position_ids,
            output_attentions, output_hidden_states, return_pooler=False,
        )  # fmt: skip
        logits = self.mlm_head(out.last_hidden_state, self.ernie.embeddings.word_embeddings.weight)
        loss = _ce(logits, labels) if labels is not None else None
        return RnaErnieHeadOutput(loss, logits, out.hidden_states, out.attentions)


class RnaErnieForPreTraining(RnaErniePreTrainedModel):
    """MLM over the vocabulary plus RNA-type classification from the pooled [CLS].

    ``labels`` (B, L): target token ids at masked positions, -100 elsewhere.
    ``type_labels`` (B,): index into :data:`rnaernie.vocab.RNA_TYPES` (0..27), -100 to ignore.
    """

    def __init__(self, config: RnaErnieConfig):
        super().__init__(config)
        self.ernie = RnaErnieModel(config, add_pooling_layer=True)
        self.mlm_head = RnaErnieMLMHead(config)
        self.type_head = nn.Linear(config.hidden_size, config.num_rna_types)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        labels: Tensor | None = None,
        type_labels: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> RnaErniePreTrainingOutput:
        out = self.ernie(
            input_ids, attention_mask, token_type_ids, position_ids,
            output_attentions, output_hidden_states,
        )  # fmt: skip
        logits = self.mlm_head(out.last_hidden_state, self.ernie.embeddings.word_embeddings.weight)
        type_logits = self.type_head(out.pooler_output)  # (B, T)
        mlm_loss = _ce(logits, labels) if labels is not None else None
        type_loss = _ce(type_logits, type_labels) if type_labels is not None else None
        parts = [x for x in (mlm_loss, type_loss) if x is not None]
        loss = sum(parts[1:], parts[0]) if parts else None
        return RnaErniePreTrainingOutput(
            loss, mlm_loss, type_loss, logits, type_logits, out.hidden_states, out.attentions
        )


# ----------------------------------------------------------------------------- classification


class RnaErnieForSequenceClassification(RnaErniePreTrainedModel):
    """tanh-pooled [CLS] → dropout → Linear(C, num_labels). ``labels`` (B,)."""

    per_token = False  # RnaErnieForTokenClassification: every token instead of the pooled [CLS]

    def __init__(self, config: RnaErnieConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.ernie = RnaErnieModel(config, add_pooling_layer=not self.per_token)
        self.dropout = _head_dropout(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        labels: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> RnaErnieHeadOutput:
        out = self.ernie(
            input_ids, attention_mask, token_type_ids, position_ids,
            output_attentions, output_hidden_states, return_pooler=not self.per_token,
        )  # fmt: skip
        h = out.last_hidden_state if self.per_token else out.pooler_output
        logits = self.classifier(self.dropout(h))  # (B, num_labels) or (B, L, num_labels)
        loss = _classification_loss(logits, labels, self.num_labels) if labels is not None else None
        return RnaErnieHeadOutput(loss, logits, out.hidden_states, out.attentions)


class RnaErnieForTokenClassification(RnaErnieForSequenceClassification):
    """Every token → Linear(C, num_labels). ``labels`` (B, L), -100 on special/padding tokens."""

    per_token = True


# ----------------------------------------------------------------------------- pairs


def pair_conv_reference(a: Tensor, valid: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """The contact head's first convolution as written: ``conv2d`` (zero padding ``k // 2``) of
    the pair features ``[a_i * a_j, a_i + a_j] * keep_ij`` (B, 2P, L, L). ``a`` (B, P, L) is zero
    at invalid positions, ``valid`` (B, L) bool, ``weight`` (O, 2P, k, k). The reference of
    :func:`pair_conv`."""
    ai, aj = a.unsqueeze(-1), a.unsqueeze(-2)  # (B, P, L, 1), (B, P, 1, L)
    keep = (valid[:, :, None] & valid[:, None, :]).unsqueeze(1).to(a.dtype)
    z = torch.cat([ai * aj, ai + aj], dim=1) * keep
    return F.conv2d(z, weight, bias, padding=weight.shape[-1] // 2)


def pair_conv(a: Tensor, valid: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """:func:`pair_conv_reference` without building the (B, 2P, L, L) pair features.

    With ``X[c, d, i] = a_c(i + d − r)`` (the k shifts of each channel, K = P·k rows) and ``V[d, i]``
    the same shifts of ``valid``, the convolution of the outer-product channels is
    ``Σ_{c,d} X[c,d,i] · (Σ_e W1[o,c,d,e] X[c,e,j])`` and that of the sum channels
    ``a_c(x) v(y) + v(x) a_c(y)`` two more such terms, so the output is ``Xᵀ T + R X``: two GEMMs
    over K per batch row (2·O·K = 10 k multiply-adds per pair for P = O = 32, k = 5, against
    O·2P·k² = 51 k for the convolution), plus O(L) work to build T and R. Returns (B, O, L, L)
    stored as (B, L, O, L) (a permuted view), the layout :func:`pair_conv_out` reads.
    """
    B, P, L = a.shape
    n_out, _, k, _ = weight.shape
    r, K = k // 2, P * k
    w1, w2 = weight[:, :P], weight[:, P:]  # (n_out, P, k, k): product and sum channels
    ap = F.pad(a, (r, k - 1 - r))
    vp = F.pad(valid.to(a.dtype), (r, k - 1 - r))
    x = torch.stack([ap[..., d : d + L] for d in range(k)], dim=2).reshape(B, K, L)
    v = torch.stack([vp[..., d : d + L] for d in range(k)], dim=1)  # (B, k, L)
    xs = x.view(B, P, k, L)
    # t[b, c, d, o, j] = Σ_e W1[o,c,d,e] X[b,c,e,j] + Σ_e W2[o,c,d,e] V[b,e,j], as two matmuls that
    # write "bcdoj" contiguously (einsum wrote another order and copied)
    w1m = w1.permute(1, 2, 0, 3).reshape(P, k * n_out, k)  # (c, d·o, e)
    w2m = w2.permute(1, 2, 0, 3).reshape(P * k * n_out, k)  # (c·d·o, e)
    t = (w1m @ xs).view(B, P, k, n_out, L) + (w2m @ v).view(B, P, k, n_out, L)
    rr = torch.einsum("ocde,bdi->bioce", w2, v)  # (B, L, n_out, P, k)
    out = x.transpose(1, 2) @ t.reshape(B, K, n_out * L)  # (B, L_i, n_out · L_j)
    out = out.view(B, L * n_out, L).baddbmm_(rr.reshape(B, L * n_out, K), x)  # in place: no copy
    out = out.view(B, L, n_out, L)
    out += bias.view(1, 1, n_out, 1)  # in place: the backward of bmm and baddbmm_ reads no output
    return out.permute(0, 2, 1, 3)


def pair_conv_out(z: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """``conv2d(z, weight, bias, padding=k // 2)`` for few output channels (the contact head's last
    convolution, C → 1): one GEMM contracts the channels for every kernel offset, ``y[d, e] = Σ_c
    W[c, d, e] z[c]`` (k² maps), then the k² maps are added shifted by their offsets (in float32
    for half-precision inputs). Same multiply-adds as the convolution, as a GEMM instead of a
    one-output-channel convolution (which the CPU backends run several times slower). Reads ``z``
    (B, C, L, L) best when stored as (B, L, C, L), as :func:`pair_conv` returns it."""
    B, C, L, _ = z.shape
    n_out, _, k, _ = weight.shape
    r = k // 2
    wm = weight.permute(0, 2, 3, 1).reshape(n_out * k * k, C)
    zs = z.permute(0, 2, 1, 3).reshape(B * L, C, L)  # a view when z is stored (B, L, C, L)
    # one (n_out·k², C) × (C, L_j) product per row i (bmm: matmul would copy z to fold it)
    y = torch.bmm(wm.unsqueeze(0).expand(B * L, -1, -1), zs).view(B, L, n_out, k, k, L)
    acc = torch.promote_types(z.dtype, torch.float32)  # half precision accumulates in float32
    out = bias.view(1, 1, n_out, 1).to(acc).expand(B, L, n_out, L).clone()
    for d in range(k):  # out[i, j] += y[i + d − r, d, e, j + e − r] where that lies inside
        i0, i1 = max(0, r - d), min(L, L + r - d)
        for e in range(k):
            j0, j1 = max(0, r - e), min(L, L + r - e)
            if i0 < i1 and j0 < j1:
                shifted = y[:, i0 + d - r : i1 + d - r, :, d, e, j0 + e - r : j1 + e - r]
                out[:, i0:i1, :, j0:j1].add_(shifted)
    return out.permute(0, 2, 1, 3).to(z.dtype)


class RnaErnieForContactPrediction(RnaErniePreTrainedModel):
    """Base-pair (contact) logits over nucleotide positions.

    Token states of the nucleotides (``[CLS]`` and ``[SEP]`` dropped: position i of the output is
    nucleotide i, i.e. token i + 1) are projected to P = ``pair_channels``; the pair features
    ``[a_i * a_j, a_i + a_j]`` (2P, L, L) go through two ``pair_kernel_size`` 2-D convolutions to one
    logit per pair, then are symmetrised. Returns ``logits`` (B, L, L) with L = tokens - 2, and
    ``pair_mask`` (B, L, L) bool marking pairs of two real nucleotides (i != j). ``labels``
    (B, L, L) in {0, 1} (or -100 to ignore) give a BCE-with-logits loss over masked pairs.
    """

    def __init__(self, config: RnaErnieConfig):
        super().__init__(config)
        P, k = config.pair_channels, config.pair_kernel_size
        self.ernie = RnaErnieModel(config, add_pooling_layer=False)
        self.proj = nn.Linear(config.hidden_size, P)
        self.conv1 = nn.Conv2d(2 * P, P, k, padding=k // 2)
        self.conv2 = nn.Conv2d(P, 1, k, padding=k // 2)
        self.init_weights()

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
        labels: Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        type_weights: Tensor | None = None,
    ) -> RnaErnieHeadOutput:
        """``input_ids`` (B, T) is ``[CLS] seq [SEP]`` or ``[CLS] seq [IND] TYPE [SEP]``.

        Type-guided: ``input_ids`` (K, B, T) holds the same sequences with K different types in the
        slot and ``type_weights`` (B, K) their weights; the pair head reads the weighted mean of the
        K encodings of the nucleotides.
        """
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        typed_k = input_ids.shape[0] if input_ids.dim() == 3 else 0
        if typed_k:
            if type_weights is None or tuple(type_weights.shape) != (
                input_ids.shape[1],
                typed_k,
            ):
                raise ValueError("(K, B, T) input_ids need type_weights of shape (B, K)")
            flat = lambda x: None if x is None else x.reshape(-1, x.shape[-1])  # noqa: E731
            out = self.ernie(
                flat(input_ids), flat(attention_mask), flat(token_type_ids), flat(position_ids),
                output_attentions, output_hidden_states, return_pooler=False,
            )  # fmt: skip
            h = out.last_hidden_state.unflatten(0, input_ids.shape[:2])  # (K, B, T, C)
            w = type_weights.t().to(h.dtype)[:, :, None, None]  # (K, B, 1, 1)
            h = (h * w).sum(0)  # (B, T, C)
            input_ids, attention_mask = input_ids[0], attention_mask[0]
        else:
            out = self.ernie(
                input_ids, attention_mask, token_type_ids, position_ids,
                output_attentions, output_hidden_states, return_pooler=False,
            )  # fmt: skip
            h = out.last_hidden_state
        # nucleotides per sequence: real tokens minus [CLS] [SEP] (and [IND] TYPE when typed)
        typed_rows = (input_ids == IND_ID).any(dim=-1).to(torch.long)
        n = attention_mask.to(torch.long).sum(dim=-1) - 2 - 2 * typed_rows  # (B,)
        L = input_ids.shape[1] - 2
        valid = torch.arange(L, device=input_ids.device)[None, :] < n[:, None]  # (B, L)
        a = self.proj(h[:, 1:-1])  # (B, L, P)
        a = a * valid.unsqueeze(-1).to(a.dtype)  # padding / [SEP] / type-slot features are zero
        a = a.transpose(1, 2)  # (B, P, L)
        pair_mask = valid[:, :, None] & valid[:, None, :]  # (B, L, L)
        keep = pair_mask.unsqueeze(1).to(a.dtype)  # (B, 1, L, L): padding pairs read as zeros
        z = torch.relu_(pair_conv(a, valid, self.conv1.weight, self.conv1.bias))  # (B, P, L, L)
        # masked in pair_conv's storage order (B, L, P, L), which pair_conv_out reads without a copy
        z = (z.permute(0, 2, 1, 3) * keep.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
        z = pair_conv_out(z, self.conv2.weight, self.conv2.bias).squeeze(1)  # (B, L, L)
        logits = 0.5 * (z + z.transpose(-1, -2))
        pair_mask = pair_mask & ~torch.eye(L, dtype=torch.bool, device=pair_mask.device)
        loss = None
        if labels is not None:
            keep = pair_mask & (labels != IGNORE_INDEX)
            if bool(keep.any()):
                loss = F.binary_cross_entropy_with_logits(
                    logits[keep].float(), labels[keep].float()
                )
            else:
                loss = logits.sum() * 0.0
        return RnaErnieHeadOutput(loss, logits, out.hidden_states, out.attentions, pair_mask)


# ----------------------------------------------------------------------------- interaction


class RnaErnieForInteraction(RnaErniePreTrainedModel):
    """miRNA–target interaction, two-tower: each sequence is encoded on its own by the shared
    encoder and mean-pooled over its real tokens to ``a``, ``b`` (B, C); ``[a, b, |a-b|, a*b]``
    (B, 4C) → Linear → ReLU → dropout → Linear(num_labels).

    Two towers (rather than one ``[CLS] a [SEP] b [SEP]`` input) keep each input within the
    position table, let target embeddings be cached, and match how the encoder was pretrained
    (single sequences, token type 0). ``labels`` (B,).
    """

    def __init__(self, config: RnaErnieConfig):
        super().__init__(config)
        C = config.hidden_size
        self.num_labels = config.num_labels
        self.ernie = RnaErnieModel(config, add_pooling_layer=False)
        self.mlp = nn.Sequential(
            nn.Linear(4 * C, C), nn.ReLU(), _head_dropout(config), nn.Linear(C, config.num_labels)
        )
        self.init_weights()

    def encode(
        self, input_ids: Tensor, attention_mask: Tensor | None = None
    ) -> RnaErnieModelOutput:
        return self.ernie(input_ids, attention_mask, return_pooler=False)

    def pool(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """(B, L) → (B, C) mean over real tokens."""
        if attention_mask is None:
            attention_mask = input_ids != self.config.pad_token_id
        return masked_mean(self.encode(input_ids, attention_mask).last_hidden_state, attention_mask)

    def classify(self, a: Tensor, b: Tensor) -> Tensor:
        """Pooled (B, C) embeddings of both sequences → (B, num_labels) logits."""
        return self.mlp(torch.cat([a, b, (a - b).abs(), a * b], dim=-1))

    def forward(
        self,
        input_ids_a: Tensor,
        input_ids_b: Tensor,
        attention_mask_a: Tensor | None = None,
        attention_mask_b: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> RnaErnieHeadOutput:
        a = self.pool(input_ids_a, attention_mask_a)  # (B, C)
        b = self.pool(input_ids_b, attention_mask_b)  # (B, C)
        logits = self.classify(a, b)  # (B, num_labels)
        loss = _classification_loss(logits, labels, self.num_labels) if labels is not None else None
        return RnaErnieHeadOutput(loss, logits)
