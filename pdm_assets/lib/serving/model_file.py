"""The packed model in the BentoML store: one pickle per head, each sha256 in the metadata, checked on load."""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pdm_assets.lib.integrity import sha256_hex, verified_bytes

MODEL_FILE = "model.pkl"
SHA256_KEY = "model_file_sha256"


def save_model(
    tag: str, model: Any, *, metadata: dict[str, Any], labels: dict[str, str], heads: Mapping[str, Any] | None = None
) -> str:
    """Pickle `model` into a new BentoML model `tag` (in the current store), its sha256 in the metadata; each
    of `heads` (the early warning) beside it as `<name>.pkl`, with its own sha256."""
    import bentoml

    files = {MODEL_FILE: pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)}
    files |= {_head_file(name): pickle.dumps(head, protocol=pickle.HIGHEST_PROTOCOL)
              for name, head in (heads or {}).items()}
    digests = {SHA256_KEY: sha256_hex(files[MODEL_FILE])}
    digests |= {_head_key(name): sha256_hex(files[_head_file(name)]) for name in heads or {}}
    with bentoml.models.create(tag, labels=labels, metadata={**metadata, **digests}) as saved:
        for name, data in files.items():
            Path(saved.path_of(name)).write_bytes(data)
    return str(saved.tag)


def load_model(stored: Any) -> Any:
    """Unpickle a stored BentoML model saved by save_model, after checking its file against the metadata."""
    data = verified_bytes(Path(stored.path_of(MODEL_FILE)), stored.info.metadata.get(SHA256_KEY),
                          f"BentoML model {stored.tag}")
    return pickle.loads(data)  # noqa: S301  # verified against the digest recorded when it was packed


def load_head(stored: Any, name: str) -> Any | None:
    """Unpickle the head `name` packed beside the model, after checking its file; None when none was packed."""
    path = Path(stored.path_of(_head_file(name)))
    if not path.exists() and _head_key(name) not in stored.info.metadata:
        return None
    data = verified_bytes(path, stored.info.metadata.get(_head_key(name)), f"BentoML model {stored.tag} ({name})")
    return pickle.loads(data)  # noqa: S301  # verified against the digest recorded when it was packed


def _head_file(name: str) -> str:
    return f"{name}.pkl"


def _head_key(name: str) -> str:
    return f"{name}_file_sha256"
