"""Saving and loading RNAErnie weights (safetensors only, never pickle), and shipped model names.

A model directory holds ``config.json`` + ``model.safetensors``. Both are written to a temporary
name and renamed, so a killed run never leaves a file that looks complete.

``from_pretrained`` takes a shipped name (``"rnaernie-tiny"``) or a directory in one of three
layouts: ours (``config.json`` carries ``"library": "rnaernie"``; encoder keys are bare in a saved
:class:`~rnaernie.model.RnaErnieModel` and prefixed ``ernie.`` in a saved head, and either loads
into either class), multimolecule's ``RnaErnie*`` ``save_pretrained`` output, or an official
PaddlePaddle state dict (:mod:`rnaernie.model.convert`).

Loading is strict: a missing or unexpected encoder tensor is a ``ValueError`` naming it, and so is
a missing or unexpected head tensor unless ``new_head=True`` (the start of a fine-tuning, where the
task head is freshly initialised and the pretraining heads are dropped).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from . import convert
from .config import LIBRARY_TAG, RnaErnieConfig
from .convert import BASE_PREFIX, align_prefix

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MODEL_NAMES = ("rnaernie-tiny",)  # shipped inside the package

T = TypeVar("T", bound="RnaErniePreTrainedModel")


# ----------------------------------------------------------------------------- base class


class RnaErniePreTrainedModel(nn.Module):
    """Weight init plus ``save_pretrained`` / ``from_pretrained`` for every RNAErnie class.

    ``base_model_prefix`` is ``""`` for the bare encoder and ``"ernie"`` for heads (the encoder then
    lives at ``self.ernie``).
    """

    base_model_prefix = "ernie"

    def __init__(self, config: RnaErnieConfig):
        super().__init__()
        self.config = config
        self.new_keys: list[str] = []  # weights freshly initialised by the last from_pretrained

    # -- init
    def _init_module(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def init_weights(self) -> None:
        self.apply(self._init_module)

    # -- save
    def save_pretrained(
        self, path: str | os.PathLike[str], *, dtype: torch.dtype | None = None
    ) -> None:
        """Write ``config.json`` and ``model.safetensors`` under ``path`` (created if needed).

        ``dtype`` (e.g. ``torch.float16``) stores the floating-point weights in that type, to halve
        a shipped file; loading casts them back to the model's own dtype.
        """
        if getattr(self, "_int8", False):
            raise ValueError("an int8-quantised model cannot be saved; save the fp32 model")
        path = os.fspath(path)
        os.makedirs(path, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        if dtype is not None:
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        fd, tmp = tempfile.mkstemp(prefix=".model-", suffix=".tmp", dir=path)
        os.close(fd)
        try:
            save_file(state, tmp, metadata={"format": "pt", "library": LIBRARY_TAG})
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a saved model is an ordinary readable file
            os.replace(tmp, os.path.join(path, WEIGHTS_NAME))
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self.config.to_json_file(os.path.join(path, CONFIG_NAME))

    # -- load
    @classmethod
    def from_pretrained(
        cls: type[T],
        path: str | os.PathLike[str],
        config: RnaErnieConfig | None = None,
        *,
        new_head: bool = False,
        int8: bool = False,
        map_location: str | torch.device = "cpu",
        model_kwargs: dict[str, Any] | None = None,
        **config_overrides: Any,
    ) -> T:
        """Load a shipped name or a directory saved by this library or by multimolecule (returned
        in eval mode).

        Example:
            >>> model = RnaErnieForSequenceClassification.from_pretrained(
            ...     "rnaernie-tiny", num_labels=13, new_head=True)  # doctest: +SKIP
            >>> model.train()  # to fine-tune  # doctest: +SKIP

        Args:
            path: ``"rnaernie-tiny"`` or a directory with ``config.json`` and ``model.safetensors``.
            config: use this config instead of the saved one (its sizes must match the weights).
            new_head: allow head tensors missing from the file (freshly initialised, listed in
                ``new_keys``) and ignore the file's other head tensors; encoder tensors must match.
            int8: dynamically quantise the Linear layers to int8 after loading (CPU inference).
            map_location: device for the loaded tensors.
            model_kwargs: extra constructor arguments (e.g. ``{"add_pooling_layer": False}``).
            config_overrides: fields to change in the saved config (e.g. ``num_labels=3``,
                ``attn_implementation="sdpa"``, ``hidden_dropout=0.0``).
        """
        path = os.fspath(resolve_model_dir(path))
        cfg_path, w_path = os.path.join(path, CONFIG_NAME), os.path.join(path, WEIGHTS_NAME)
        raw = {}
        if os.path.isfile(cfg_path):
            try:
                with open(cfg_path, encoding="utf-8") as fh:
                    raw = json.load(fh)
            except (ValueError, UnicodeDecodeError) as e:
                raise ValueError(f"{cfg_path}: not valid JSON ({e})") from None
        try:
            state = load_file(w_path, device=str(map_location))
        except Exception as e:  # safetensors raises its own error type for a damaged file
            raise ValueError(f"{w_path}: not a readable safetensors file ({e})") from None
        foreign = raw.get("library") != LIBRARY_TAG
        try:
            if not foreign:
                saved = RnaErnieConfig.from_dict(raw)
            elif convert.is_multimolecule_state_dict(state):
                logger.info("converting a multimolecule RnaErnie checkpoint from %s", path)
                saved = convert.config_from_multimolecule(raw, state)
                state = convert.convert_multimolecule_state_dict(state)
            elif convert.is_official_state_dict(state):
                saved = convert.config_from_official(raw, state)
                state = convert.convert_official_state_dict(state)
            else:
                raise ValueError("neither an rnaernie nor a multimolecule RnaErnie checkpoint")
            config = config if config is not None else saved
            for key, value in config_overrides.items():
                if not hasattr(config, key):
                    raise ValueError(f"unknown config field {key!r}")
                setattr(config, key, value)
            config.__post_init__()
        except (ValueError, TypeError) as e:
            raise ValueError(f"{cfg_path}: {e}") from None
        model = cls(config, **(model_kwargs or {}))
        # a foreign checkpoint has no type head; its other heads are ours to initialise
        model.load_converted_state_dict(state, new_head=new_head or foreign, source=w_path)
        model.eval()
        if int8:
            quantize_int8(model)
        return model

    def load_converted_state_dict(
        self, state: Mapping[str, Tensor], *, new_head: bool = False, source: str = "checkpoint"
    ) -> None:
        """Load a state dict in our key layout, adapting the ``ernie.`` prefix to this class.

        Missing or unexpected encoder tensors, and shape mismatches, are a ``ValueError`` naming
        them (and ``source``); so are head tensors unless ``new_head`` (then missing ones keep
        their fresh init and are listed in ``new_keys``, and unused or differently shaped ones (another
        number of labels) are dropped). A bare
        encoder ignores the head tensors of a head's file.
        """
        state = align_prefix(state, self.base_model_prefix)
        own = self.state_dict()
        enc = BASE_PREFIX if self.base_model_prefix else ""

        def where(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f" (+{len(keys) - 6} more)" if len(keys) > 6 else "")

        def is_encoder(k: str) -> bool:  # the pooler counts as a head: not every model has one
            return k.startswith(enc) and not k[len(enc) :].startswith("pooler.")

        resized = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
        for k in resized:
            if is_encoder(k) or not new_head:
                raise ValueError(f"{source}: shape mismatch for {k}: file {tuple(state[k].shape)}, "
                                 f"model {tuple(own[k].shape)} (does config.json match?)")  # fmt: skip
        state = {k: v for k, v in state.items() if k not in resized}  # new_head: a fresh one

        missing = [k for k in own if k not in state]
        extra = [k for k in state if k not in own and not k.startswith(enc + "pooler.")]
        pooler = enc + "pooler."  # a missing pooler is freshly initialised (not every file has one)
        bad_missing = [
            k for k in missing if is_encoder(k) or not (new_head or k.startswith(pooler))
        ]
        bad_extra = [k for k in extra if is_encoder(k) or not new_head]
        hint = (
            ""
            if any(map(is_encoder, bad_missing + bad_extra))
            else (" (a different head than the file's? new_head=True starts a fresh one)")
        )
        if bad_missing:
            raise ValueError(f"{source}: tensors missing from the file: {where(bad_missing)}{hint}")
        if bad_extra:
            raise ValueError(f"{source}: unexpected tensors in the file (does config.json match "
                             f"the weights?): {where(bad_extra)}{hint}")  # fmt: skip
        self.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
        if missing:
            logger.info("newly initialised weights: %s", ", ".join(missing))
        self.new_keys = missing


def resolve_model_dir(name_or_path: str | os.PathLike[str]) -> Path:
    """A shipped model name (``rnaernie-tiny``) → its package directory; anything else is a
    directory that must hold ``model.safetensors`` (``ValueError`` otherwise)."""
    if str(name_or_path) in MODEL_NAMES:
        p = Path(str(resources.files("rnaernie").joinpath("data", "models", str(name_or_path))))
        if not (p / WEIGHTS_NAME).is_file():
            raise ValueError(f"the shipped model {name_or_path!r} is not installed ({p})")
        return p
    p = Path(name_or_path).expanduser()
    if not p.is_dir():
        raise ValueError(
            f"model {str(name_or_path)!r} is neither a shipped name ({', '.join(MODEL_NAMES)}) "
            "nor an existing directory"
        )
    if not (p / WEIGHTS_NAME).is_file():
        raise ValueError(f"model directory {str(p)!r} has no {WEIGHTS_NAME}")
    return p


def quantize_int8(model: nn.Module) -> nn.Module:
    """In-place dynamic int8 quantisation of the ``nn.Linear`` layers of ``model`` (CPU)."""
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic

        engines = torch.backends.quantized.supported_engines
        if "fbgemm" in engines:
            torch.backends.quantized.engine = "fbgemm"
        elif "x86" in engines:
            torch.backends.quantized.engine = "x86"
        quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
    model._int8 = True  # type: ignore[assignment]
    return model
