"""Resume states: an interrupted training run continues from its last finished epoch.

At each epoch's end the engine (:func:`pipeline.training.engine.fit`) writes one file,
``.resume/<stage>/<run>.pt``: the model, optimizer and scheduler states, every random
generator (torch's global one and CUDA's, numpy's, Python's ``random``, and the run's own
shuffling/augmentation generator), the best-so-far checkpoint and the curves. A rerun of
the same stage loads it and continues, so a run killed after epoch k and rerun gives the
same bytes as one that never stopped: every random number is drawn from the same state,
every operation runs in the same order.

The folder lies outside the committed outputs (``.resume/`` is in ``.gitignore`` and
``.dvcignore``) and is removed when the stage completes (:func:`resumable`). Each file is
written atomically (a temporary sibling, then ``os.replace``), so a ``kill -9`` during the
write leaves the previous epoch's state. A state carries a fingerprint of what decides the
run's bytes: the variant's params, the data it trains on, the source of every ``pipeline``
module loaded and the torch version. If any changed since the interruption, the state is
dropped with one log line and the run starts fresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import random
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from pipeline.core.io import atomic_path

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent  # pipeline/
RESUME_DIR = Path(".resume")  # relative to the working directory: the repository root under DVC
FORMAT_VERSION = 1


def code_digest(package: Path = PACKAGE) -> str:
    """SHA-256 of the source of every loaded module of this package, and the torch version.

    The modules loaded when training starts are the training closure (the stage's imports,
    and the stage itself, which ``python -m`` loads as ``__main__``), so an edit to any of
    them - the engine, a model family, a reader - invalidates a state.
    """
    sources = set()
    for module in list(sys.modules.values()):
        source = getattr(module, "__file__", None)
        path = Path(source).resolve() if source and source.endswith(".py") else None
        if path is not None and path.is_relative_to(package) and path.is_file():
            sources.add(path)
    # the command-line dispatcher decides nothing in a run: `cnn-pipeline train X` resumes `dvc repro`'s run
    sources.discard(package / "__main__.py")
    digest = hashlib.sha256(f"torch {torch.__version__}\n".encode())
    for source in sorted(sources):
        digest.update(f"{source.relative_to(package).as_posix()}\n".encode())
        digest.update(source.read_bytes())
    return digest.hexdigest()


def fingerprint(params: object, tensors: Iterable[torch.Tensor]) -> str:
    """What a state must match to be resumed: the run's params (a JSON-able value), its data and the code."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for tensor in tensors:
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{array.dtype} {array.shape}\n".encode())
        digest.update(memoryview(array).cast("B"))
    digest.update(code_digest().encode())
    return digest.hexdigest()


def rng_states(generator: torch.Generator) -> dict:
    """Every random generator a training run may draw from, as plain data and tensors."""
    numpy_state = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {**numpy_state, "state": {k: np.asarray(v).tolist() for k, v in numpy_state["state"].items()}},
        "python": random.getstate(),
        "generator": generator.get_state(),
    }


def restore_rng_states(states: dict, generator: torch.Generator) -> None:
    """The inverse of :func:`rng_states`."""
    torch.set_rng_state(states["torch"])
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])
    numpy_state = dict(states["numpy"])
    numpy_state["state"] = {
        k: np.asarray(v, dtype=np.uint32) if k == "key" else v for k, v in numpy_state["state"].items()
    }
    np.random.set_state(numpy_state)
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    generator.set_state(states["generator"])


class ResumeFile:
    """One training run's resume state: ``<folder>/<name>.pt``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def save(self, state: dict, fingerprint: str) -> None:
        """Write ``state`` atomically (serialized in memory first: a kill leaves the previous file)."""
        buffer = io.BytesIO()
        torch.save({"format": FORMAT_VERSION, "fingerprint": fingerprint, "state": state}, buffer)
        with atomic_path(self.path) as tmp:
            tmp.write_bytes(buffer.getvalue())

    def load(self, fingerprint: str) -> dict | None:
        """The saved state if it matches ``fingerprint``; else None, with one log line saying why.

        Loaded on the CPU (generator states must be CPU tensors); ``load_state_dict`` moves the
        weights and the optimizer's moments to the model's device.
        """
        if not self.path.is_file():
            return None
        try:
            payload = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file means "start fresh", never a crash
            log.warning("%s: unreadable resume state (%s); starting fresh", self.path, type(exc).__name__)
            return None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
            log.warning("%s: resume state of another format; starting fresh", self.path)
            return None
        if payload.get("fingerprint") != fingerprint:
            log.warning("%s: params, data or code changed since it was saved; starting fresh", self.path)
            return None
        return payload["state"]


class ResumeStore:
    """A stage's folder of resume states, ``<root>/<stage>/``, one file per training run (a seed
    study has several); :meth:`clear` once the stage's outputs are written."""

    def __init__(self, stage: str, root: Path = RESUME_DIR) -> None:
        self.root = root
        self.folder = root / stage

    def run(self, name: str = "state") -> ResumeFile:
        return ResumeFile(self.folder / f"{name}.pt")

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.root.rmdir()  # only when no other stage left a state there


@contextlib.contextmanager
def resumable(stage: str, root: Path = RESUME_DIR) -> Iterator[ResumeStore]:
    """The resume states of ``stage`` (e.g. ``train@prac5``), cleared when the block completes.

    On an exception (a crash, Ctrl-C, a refused result) the states stay for the rerun.
    """
    store = ResumeStore(stage, root)
    yield store
    store.clear()


def data_tensors(splits) -> list[torch.Tensor]:
    """The images and labels of a :class:`~pipeline.training.datasets.Splits`: part of a state's fingerprint."""
    parts = [s for s in (splits.train, splits.val, splits.test) if s is not None]
    return [t for s in parts for t in (s.images, s.labels)]


def training_state(trained: tuple, run: dict, first_batch: dict, result) -> dict:
    """What :func:`pipeline.training.engine.fit` needs to continue after the current epoch.

    ``trained``: ``(model, optimizer, scheduler or None, generator)``; ``run``: the loop's
    counters and best-so-far checkpoint; ``result``: its ``epochs`` and ``steps`` curves.
    """
    model, optimizer, scheduler, generator = trained
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": rng_states(generator),
        "run": dict(run),
        "first_batch": dict(first_batch),
        "epochs": list(result.epochs),
        "steps": list(result.steps),
    }


def restore_training(state: dict, trained: tuple, run: dict, first_batch: dict, result) -> None:
    """The inverse of :func:`training_state`, in place (random generators last: nothing draws after)."""
    model, optimizer, scheduler, generator = trained
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    run.update(state["run"])
    first_batch.update(state["first_batch"])
    result.epochs[:] = state["epochs"]
    result.steps[:] = state["steps"]
    restore_rng_states(state["rng"], generator)


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; its message says where it stopped (the stage runner prints it, exit 130)."""


@contextlib.contextmanager
def interrupt_message(name: str, epochs: int, run: dict, resume: ResumeFile | None) -> Iterator[None]:
    """Turn Ctrl-C into one line: the epoch it stopped in, and whether a rerun resumes."""
    try:
        yield
    except KeyboardInterrupt:
        done = run["epoch"]
        where = f"{name}: interrupted in epoch {done + 1} of {epochs}"
        if resume is not None and done > 0:
            raise TrainingInterrupted(
                f"{where}; epochs 1-{done} are kept in {resume.path}: a rerun resumes from epoch {done + 1}"
            ) from None
        raise TrainingInterrupted(f"{where}; no epoch had finished: a rerun starts from epoch 1") from None
