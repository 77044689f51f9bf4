"""The service's errors, as BentoML renders them: each exception class carries its HTTP status (error_code).

The reason code names the rule that was broken; it labels pdm_validation_rejections_total.
"""

from __future__ import annotations

from http import HTTPStatus

from bentoml.exceptions import BentoMLException, ServiceUnavailable

from pdm_assets.lib.serving.history_arrays import HistoryError

# HistoryError reasons that mean "too big" rather than "wrong".
TOO_LARGE_REASONS = frozenset({"batch_size", "too_many_rows"})


class Rejected(BentoMLException):
    """A request the service will not score; `reason` says which rule it broke, `path` which field."""

    reason = "invalid_request"

    def __init__(self, message: str, *, reason: str | None = None, path: str = "") -> None:
        super().__init__(message)
        self.reason = reason or type(self).reason
        self.path = path

    @classmethod
    def from_history_error(cls, error: HistoryError) -> Rejected:
        kind = RequestTooLarge if error.reason in TOO_LARGE_REASONS else InvalidHistory
        return kind(error.message, reason=error.reason, path=error.path)


class InvalidHistory(Rejected):
    """Well-formed JSON whose history breaks a rule (times after as_of, unsorted, too little telemetry...)."""

    error_code = HTTPStatus.UNPROCESSABLE_ENTITY


class RequestTooLarge(Rejected):
    """More histories, rows or bytes than the serving limits allow."""

    error_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    reason = "too_large"


class ModelNotLoaded(ServiceUnavailable):
    """No model is loaded (/readyz is false); the reason is in the log and on GET /model."""
