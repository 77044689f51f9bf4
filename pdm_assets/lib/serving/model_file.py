"""The packed model in the BentoML store: one pickle, its sha256 in the model's metadata, checked on load."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from pdm_assets.lib.integrity import sha256_hex, verified_bytes

MODEL_FILE = "model.pkl"
SHA256_KEY = "model_file_sha256"


def save_model(tag: str, model: Any, *, metadata: dict[str, Any], labels: dict[str, str]) -> str:
    """Pickle `model` into a new BentoML model `tag` (in the current store), its sha256 in the metadata."""
    import bentoml

    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    with bentoml.models.create(tag, labels=labels, metadata={**metadata, SHA256_KEY: sha256_hex(data)}) as saved:
        Path(saved.path_of(MODEL_FILE)).write_bytes(data)
    return str(saved.tag)


def load_model(stored: Any) -> Any:
    """Unpickle a stored BentoML model saved by save_model, after checking its file against the metadata."""
    data = verified_bytes(Path(stored.path_of(MODEL_FILE)), stored.info.metadata.get(SHA256_KEY),
                          f"BentoML model {stored.tag}")
    return pickle.loads(data)  # noqa: S301  # verified against the digest recorded when it was packed
