"""sha256 of model files: recorded where a model is stored, checked before anything is unpickled.

Unpickling runs code; a file changed after it was recorded (a tampered store, a bad copy) must not be loaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


class IntegrityError(ValueError):
    """A model file is missing its recorded digest, or does not match it."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verified_bytes(path: Path, expected: str | None, what: str) -> bytes:
    """The file's bytes, if their sha256 is `expected`; IntegrityError naming `what` and the fix otherwise.

    The returned bytes are the ones checked: load from them, not from the path again."""
    if not expected:
        raise IntegrityError(f"{what} carries no sha256 of {path.name}: it was stored before model files were "
                             "hashed, or the record was stripped; register and package the model again, or, for a "
                             "registered version you trust as it is, record its digest with `make trust VERSION=n`")
    data = path.read_bytes()
    actual = sha256_hex(data)
    if actual != expected:
        raise IntegrityError(f"{path} has sha256 {actual}, but {what} recorded {expected}: the file changed "
                             "after it was stored; refusing to unpickle it (restore it or package the model again)")
    return data
