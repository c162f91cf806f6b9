"""``models/<variant>.pt``: weights plus everything needed to rebuild and feed the model.

A checkpoint is a plain dict saved with ``torch.save``:

``format``      checkpoint format version (int)
``variant``     variant name, e.g. ``"prac5"``
``model``       ``{"name": registry name, "args": keyword arguments}``
``input``       ``{"channels", "height", "width", "mean", "std"}``: the evaluation preprocessing
``classes``     class names, index = label
``state_dict``  the weights (float32)
``params``      the variant's full ``params.yaml`` entry, for provenance

It is serialized to memory first and written atomically, so the bytes do not
depend on the (temporary) file name torch would otherwise embed.

Loading is safe and strict (:func:`load_checkpoint`): ``weights_only=True`` (a pickle
that would run code is refused), and anything that is not such a dict - a text file, a
truncated file, a pickled list, a missing key, weights that do not fit the model,
non-finite weights or normalization, a class list that does not match the model's
outputs - is one :class:`CheckpointError` naming the file and the problem, never
torch's advice to load it unsafely. A caller that names a variant
passes it (``variant=``): a checkpoint of another variant is refused, so its results are
never written under the wrong name.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from pipeline.core.config import VariantConfig, build, validate_variant
from pipeline.core.errors import PipelineError
from pipeline.core.io import atomic_path
from pipeline.models import create_model
from pipeline.training.normalizer import Normalizer

FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    variant: str
    model: nn.Module
    normalizer: Normalizer
    input_shape: tuple[int, int, int]  # (channels, height, width)
    classes: list[str]
    spec: VariantConfig  # the checkpoint's ``params``, typed and validated: what the model was trained with


def save_checkpoint(
    path: str | Path,
    variant: VariantConfig,
    model: nn.Module,
    normalizer: Normalizer,
    input_shape: tuple[int, int, int],
    classes: list[str],
) -> None:
    channels, height, width = input_shape
    payload = {
        "format": FORMAT_VERSION,
        "variant": variant.name,
        "model": {"name": variant.model.name, "args": dict(variant.model.args)},
        "input": {"channels": channels, "height": height, "width": width, **normalizer.state()},
        "classes": list(classes),
        "state_dict": _cpu_state(model),
        "params": dataclasses.asdict(variant),
    }
    _save(payload, path)


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as plain contiguous CPU tensors: what both checkpoint files store."""
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def _save(obj: object, path: str | Path) -> None:
    """``torch.save`` to memory first, then one atomic write: no half-written file on failure."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


class CheckpointError(PipelineError):
    """A file that is not a usable checkpoint of this pipeline, or not of the variant named."""


def _read_payload(path: Path) -> dict:
    """The dict a checkpoint file holds, with every key present; anything else (a folder, a
    missing file, not torch's format, unsafe or truncated pickles) is refused by name."""
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint (train it first: `dvc repro train@<variant>`)")
    with open(path, "rb") as handle:
        magic = handle.read(4)
    if not (magic.startswith(b"PK\x03\x04") or magic.startswith(b"\x80")):  # torch's zip format, or a bare pickle
        raise CheckpointError(
            f"{path}: not a readable checkpoint: not a file written by torch.save (it starts with {magic!r})"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types; each means "not a checkpoint we can load"
        text = str(exc)
        if "weights_only" in text or "Unsupported global" in text:  # torch's advice is the unsafe load: not repeated
            reason = "it holds objects other than tensors and plain data, which are not loaded (unpickling them could run code)"
        elif "zip archive" in text or "central directory" in text:
            reason = "the file is truncated or corrupted (not a complete torch.save archive)"
        else:
            reason = (text.strip().splitlines() or [type(exc).__name__])[0][:200]
        raise CheckpointError(f"{path}: not a readable checkpoint: {reason}") from None
    if not isinstance(payload, dict):
        raise CheckpointError(
            f"{path}: holds a {type(payload).__name__}, not a checkpoint (a dict written by the train stage)"
        )
    missing = [
        k for k in ("format", "variant", "model", "input", "classes", "state_dict", "params") if k not in payload
    ]
    if missing:
        raise CheckpointError(f"{path}: not a checkpoint of this pipeline: missing key(s) {', '.join(missing)}")
    return payload


def _build_model(path: Path, payload: dict) -> nn.Module:
    """The checkpoint's model with its weights loaded; weights that do not fit the model or are
    not finite are refused (the latter: the run that wrote them diverged)."""
    model = create_model(payload["model"]["name"], **payload["model"]["args"])
    if not isinstance(payload["state_dict"], dict):
        raise CheckpointError(f"{path}: state_dict is a {type(payload['state_dict']).__name__}, not a dict of tensors")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:  # torch's report of missing, unexpected or mis-shaped weights
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"{path}: the weights do not fit model {payload['model']['name']!r}: "
            f"{first[1].strip() if len(first) > 1 else first[0] if first else exc}"
        ) from exc
    bad = [
        name for name, t in model.state_dict().items() if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        raise CheckpointError(
            f"{path}: non-finite weights in {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''} "
            f"(the run that wrote it diverged)"
        )
    return model


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu", variant: str | None = None) -> LoadedModel:
    """Load ``path`` safely and strictly (module docstring): every problem is one
    :class:`CheckpointError` naming the file, and ``variant`` (when given) must match."""
    path = Path(path)
    payload = _read_payload(path)
    if payload["format"] != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {payload['format']!r}, expected {FORMAT_VERSION}")
    if variant is not None and payload["variant"] != variant:
        raise CheckpointError(
            f"{path}: holds variant {payload['variant']!r}, not {variant!r}; "
            f"its results would be written under the wrong name"
        )
    model = _build_model(path, payload)
    info = payload["input"]
    if not all(math.isfinite(v) for v in [*info["mean"], *info["std"]]):
        raise CheckpointError(f"{path}: non-finite normalization mean/std {info['mean']} / {info['std']}")
    model.to(device).eval()
    _check_classes(path, model, payload["classes"], (info["channels"], info["height"], info["width"]), device)
    return LoadedModel(
        variant=payload["variant"],
        model=model,
        normalizer=Normalizer(info["mean"], info["std"]),
        input_shape=(info["channels"], info["height"], info["width"]),
        classes=payload["classes"],
        spec=_spec(payload["params"], payload["variant"], str(path)),
    )


def _check_classes(path: Path, model: nn.Module, classes: object, shape: tuple, device) -> None:
    """The class list must name each output of the model: a shorter or longer list would score
    (and name) the wrong classes in every evaluation. One forward pass of a blank image tells."""
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise CheckpointError(f"{path}: classes must be a list of class names, got {classes!r:.80}")
    with torch.no_grad():
        out = model(torch.zeros(1, *shape, device=device))
    if out.shape[-1] != len(classes):
        raise CheckpointError(
            f"{path}: lists {len(classes)} classes but the model has {out.shape[-1]} outputs; "
            f"its evaluation would score the wrong classes"
        )


def export_state_dict(path: str | Path, out: str | Path, variant: str | None = None) -> list[str]:
    """Write the checkpoint's weights alone: ``torch.save(model.state_dict())``, what CSE 849 asks
    for as ``q1_model.pt``, loadable the handout's way into a freshly built network::

        model = create_model("cse849_cnn", **args)  # the handout's architecture
        model.load_state_dict(torch.load("q1_model.pt"))

    The normalization and class names are not in it (they live in the full checkpoint). The
    checkpoint is validated first (:func:`load_checkpoint`), so a diverged or foreign file is
    refused instead of exported. Returns the tensor names written.
    """
    loaded = load_checkpoint(path, variant=variant)
    state = _cpu_state(loaded.model)
    _save(state, out)
    return list(state)


def _spec(params: dict, variant: str, where: str) -> VariantConfig:
    """The typed variant config stored in a checkpoint's ``params`` (what the model was trained with)."""
    raw = dict(params)
    name = raw.pop("name", variant)
    spec = build(VariantConfig, raw, f"{where}: params", name=name)
    validate_variant(spec, f"{where}: params")
    return spec
