"""Schemathesis checks of our own, loaded with SCHEMATHESIS_HOOKS=pdm_checks (deploy/fuzz on PYTHONPATH).

`client_error_has_message`: every 4xx answer tells the client what was wrong. For the model's API
(/predict) that is JSON with a non-empty "error" sentence, as the service's RequestGuard promises
(bentos/pdm_service/guard.py); BentoML's built-in routes may answer in plain text ("Method Not Allowed"), but
never with an empty body.
"""

from __future__ import annotations

import json

import schemathesis

API_PATHS = ("/predict",)


@schemathesis.check
def client_error_has_message(ctx, response, case) -> None:  # type: ignore[no-untyped-def]
    if not 400 <= response.status_code < 500:
        return None
    content = response.content or b""
    if not content.strip():
        raise AssertionError(f"{response.status_code} answer has an empty body")
    if case.path not in API_PATHS:
        return None
    try:
        body = json.loads(content)
    except ValueError as error:
        raise AssertionError(f"{response.status_code} answer is not JSON: {content[:200]!r}") from error
    message = body.get("error") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        raise AssertionError(f"{response.status_code} answer has no 'error' message: {str(body)[:200]}")
    return None
