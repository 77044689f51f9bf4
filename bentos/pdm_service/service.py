"""Failure predictions over HTTP from raw machine history, with the feature code that trained the model.

The request carries raw telemetry, errors and maintenance; features come from
`pdm_assets.lib.modelling.features.build_features` (through `pdm_assets.lib.serving.contract`), and the threshold,
horizon, feature list and lookbacks come from the packed model's metadata.
"""

from __future__ import annotations

import functools
import gc
import json
import logging
import threading
import time
from http import HTTPStatus
from types import SimpleNamespace
from typing import Annotated, Any

import bentoml
from bentoml.exceptions import BentoMLException, ServiceUnavailable
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pdm_assets.lib.serving.batching import CoalescingBatcher, merged_or_each
from pdm_assets.lib.serving.contract import (
    MODEL_ROUTE,
    PREDICT_ROUTE,
    SERVICE_NAME,
    HistoryError,
    Limits,
    MachineHistory,
    Prediction,
    ServingContract,
    check_scores,
    features_for_histories,
    predictions,
)
from pdm_assets.lib.serving.explain import OnDemandExplainer, wants_explanation
from pdm_assets.lib.serving.prediction_log import MONITOR_NAME, log_predictions, monitor_options
from pdm_assets.settings import get_settings

logger = logging.getLogger("bentoml.service.pdm")

# HistoryError reasons that mean "too big" rather than "wrong", and the statuses the API answers them with.
TOO_LARGE = {"batch_size", "too_many_rows"}
API_REJECTIONS = {HTTPStatus.REQUEST_ENTITY_TOO_LARGE, HTTPStatus.UNPROCESSABLE_ENTITY}
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)

# The packages come from bentos/requirements.txt through [tool.bentoml.build] in pyproject.toml. Every package
# installs from wheels, so no apt layer is needed: a distro name BentoML does not know ("slim") keeps it from
# adding its default one (compilers, git: about 250 MB) to the python:3.11-slim base.
IMAGE = bentoml.images.Image(base_image="python:3.11-slim", distro="slim", python_version="3.11")


class ServiceArgs(BaseModel):
    """Build-time arguments, stored in the bento: which BentoML model to pack and serve."""

    model_tag: str = f"{get_settings().registered_model_name}:latest"


ARGS = bentoml.use_arguments(ServiceArgs)


@functools.cache
def service_metrics() -> SimpleNamespace:
    """Prometheus metrics, created once per process after the worker has set PROMETHEUS_MULTIPROC_DIR.

    bentoml.metrics is deprecated in 1.4 in favour of prometheus_client, which it only re-exports;
    the import is deferred for the same reason bentoml.metrics defers it.
    """
    import prometheus_client as prom

    def metric(kind: Any, name: str, documentation: str, **options: Any) -> Any:
        try:
            return kind(name, documentation, **options)
        except ValueError:  # registered by an earlier import of this module in the same process
            return prom.REGISTRY._names_to_collectors[name]

    return SimpleNamespace(
        predictions=metric(prom.Counter, "pdm_predictions", "Histories scored, by alert", labelnames=["alert"]),
        probability=metric(
            prom.Histogram, "pdm_failure_probability", "P(any component fails within the horizon) per history",
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
        ),
        feature_seconds=metric(
            prom.Histogram, "pdm_feature_seconds", "Seconds to validate a request and compute its features",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        ),
        batch_size=metric(
            prom.Histogram, "pdm_batch_size", "Histories per accepted /predict request", buckets=BATCH_BUCKETS,
        ),
        scored_together=metric(
            prom.Histogram, "pdm_scored_together", "Histories scored in one model call (overlapping requests)",
            buckets=BATCH_BUCKETS,
        ),
        rejections=metric(
            prom.Counter, "pdm_validation_rejections", "Requests rejected as bad input, by reason",
            labelnames=["reason"],
        ),
        model_info=metric(
            prom.Gauge, "pdm_model_info", "The served model (always 1)", labelnames=["version", "bento_tag"],
            multiprocess_mode="max",
        ),
        trained=metric(
            prom.Gauge, "pdm_model_trained_timestamp_seconds",
            "When the served model's training run started (unix time)", multiprocess_mode="max",
        ),
    )


@bentoml.service(
    name=SERVICE_NAME,
    image=IMAGE,
    description="P(component failure within the model's horizon) from raw machine history.",
    traffic={"timeout": 60},
    # Threads wait while one of them scores for all (CoalescingBatcher); with one, requests never overlap.
    threads=get_settings().serving_threads,
    labels={"project": "pdm-assets"},
)
class PdmService:
    """Loads the packed model once; /readyz stays false, with the reason logged, if it cannot."""

    model_ref = bentoml.models.BentoModel(ARGS.model_tag)

    def __init__(self) -> None:
        self._single_threaded = threading.local()
        self.metrics = service_metrics()
        self.limits = Limits.from_settings()
        self.batcher = CoalescingBatcher(self._score_requests, max_size=self.limits.max_batch, size=len)
        self.pipeline: Any = None
        self.contract: ServingContract | None = None
        self.bento_tag = _bento_tag()
        self.model_tag = str(type(self).model_ref.tag)
        self.not_ready_reason = ""
        try:
            # The local store only: a bento carries its model, and a missing one must not be pulled from a cloud.
            stored = type(self).model_ref.stored
            if stored is None:
                raise LookupError(f"{self.model_tag} is not in the BentoML model store")
            self.model_tag = str(stored.tag)
            contract = ServingContract.model_validate(stored.info.metadata)
            contract.check_compatible()
            pipeline = bentoml.sklearn.load_model(stored)
            check_scores(pipeline, contract)
        except Exception as error:  # whatever a broken model raises, the service must stay up and unready
            self.not_ready_reason = f"model {self.model_tag} could not be loaded: {type(error).__name__}: {error}"
            logger.error("not ready: %s", self.not_ready_reason)
            return
        self.pipeline, self.contract = pipeline, contract
        self.explainer = OnDemandExplainer(pipeline)
        self.prediction_log = monitor_options(get_settings().prediction_log_dir)
        self.model_version = f"{contract.registered_name}/{contract.registered_version} ({self.bento_tag})"
        self.metrics.model_info.labels(version=contract.registered_version, bento_tag=self.bento_tag).set(1)
        self.metrics.trained.set(contract.trained_at)
        logger.info("serving %s, threshold %.4f, horizon %d h", self.model_version, contract.threshold,
                    contract.horizon_hours)
        # Everything loaded so far lives as long as the worker: out of the collector's sight, a full
        # collection walks only what requests allocate (it otherwise stalls every request for ~150 ms).
        gc.collect()
        gc.freeze()

    def __is_ready__(self) -> bool:
        return self.pipeline is not None

    @bentoml.api(route=PREDICT_ROUTE)
    def predict(
        self,
        histories: Annotated[list[MachineHistory], Field(min_length=1)],
        explain: Annotated[bool, Field(description="Add each prediction's reasons (also ?explain=true).")] = False,
        ctx=None,  # the bentoml.Context, injected when served (unannotated: optional in-process)
    ) -> list[Prediction]:
        """P(failure within the horizon) for each machine history, in request order."""
        if self.pipeline is None or self.contract is None:
            raise ServiceUnavailable(f"no model loaded: {self.not_ready_reason}")
        self._use_one_thread()
        outcome = self.batcher(histories)
        if isinstance(outcome, HistoryError):
            self.metrics.rejections.labels(reason=outcome.reason).inc()
            too_large = outcome.reason in TOO_LARGE
            status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE if too_large else HTTPStatus.UNPROCESSABLE_ENTITY
            raise BentoMLException(outcome.message, error_code=status) from outcome
        self.metrics.batch_size.observe(len(histories))
        result = outcome
        alerts = sum(p.alert for p in result)
        if alerts:
            self.metrics.predictions.labels(alert="true").inc(alerts)
        if len(result) - alerts:
            self.metrics.predictions.labels(alert="false").inc(len(result) - alerts)
        for p in result:
            self.metrics.probability.observe(p.failure_probability)
        if wants_explanation(ctx.request.query_params.get("explain") if ctx is not None else None, explain):
            result = self._explained(histories, result)
        with bentoml.monitor(MONITOR_NAME, monitor_options=self.prediction_log) as monitor:
            log_predictions(monitor, result)
        return result

    def _explained(self, histories: list[MachineHistory], result: list[Prediction]) -> list[Prediction]:
        """The predictions with their reasons (features computed again: only requests that ask pay for it)."""
        assert self.contract is not None
        features = features_for_histories(histories, limits=self.limits)
        reasons = self.explainer.reasons(features, self.contract.feature_columns)
        return [p.model_copy(update={"reasons": r}) for p, r in zip(result, reasons, strict=True)]

    def _score_requests(self, requests: list[list[MachineHistory]]) -> list[list[Prediction] | HistoryError]:
        """Overlapping requests in one feature and model call; a rejected history fails its own request only."""
        return merged_or_each(self._score, requests, HistoryError)

    def _score(self, histories: list[MachineHistory]) -> list[Prediction]:
        assert self.pipeline is not None and self.contract is not None  # predict checks before queueing
        start = time.perf_counter()
        features = features_for_histories(histories, limits=self.limits)
        self.metrics.feature_seconds.observe(time.perf_counter() - start)
        self.metrics.scored_together.observe(len(histories))
        return predictions(self.pipeline, self.contract, features, self.model_version)

    def _use_one_thread(self) -> None:
        """One OpenMP/BLAS thread in each thread that scores: a thread team costs more than it saves on
        a few rows, and spinning teams of concurrent requests starve each other. OpenMP keeps the limit
        per calling thread, so it is set once in each of the server's worker threads."""
        if not getattr(self._single_threaded, "done", False):
            from threadpoolctl import threadpool_limits

            threadpool_limits(1)
            self._single_threaded.done = True

    def model_card(self) -> dict[str, Any]:
        """The served model: versions, training data and period, contract and evaluation figures."""
        if self.contract is None:
            raise ServiceUnavailable(f"no model loaded: {self.not_ready_reason}")
        c = self.contract
        return {
            "model_version": self.model_version,
            "registered_name": c.registered_name,
            "registered_version": c.registered_version,
            "bento_tag": self.bento_tag,
            "bentoml_model_tag": self.model_tag,
            "mlflow_run_id": c.run_id,
            "model_uri": c.model_uri,
            "data_source": c.data_source,
            "training_start": c.training_start,
            "training_end": c.training_end,
            "split": c.split,
            "trained_at": c.trained_at,
            "threshold": c.threshold,
            "horizon_hours": c.horizon_hours,
            "grid_hours": c.grid_hours,
            "telemetry_lookback_hours": c.telemetry_lookback_hours,
            "error_lookback_hours": c.error_lookback_hours,
            "feature_columns": c.feature_columns,
            "metrics": c.metrics,
            "limits": vars(self.limits),
        }


def _bento_tag() -> str:
    """The tag of the bento being served, or a marker when the service runs from source."""
    bento = getattr(PdmService, "bento", None)
    if bento is not None:
        return str(bento.tag)
    name, bento_version = bentoml.server_context.bento_name, bentoml.server_context.bento_version
    return f"{name}:{bento_version}" if name else "source"


async def _model_endpoint(request: Request) -> JSONResponse:
    service = bentoml.get_current_service()
    if service.contract is None:
        return JSONResponse({"error": f"no model loaded: {service.not_ready_reason}"}, status_code=503)
    return JSONResponse(service.model_card())


# GET /model; mounted at the root so that the exact path matches (PassiveMount lets other routes through).
bentoml.asgi_app(Starlette(routes=[Route(MODEL_ROUTE, _model_endpoint, methods=["GET"])]), path="/")(PdmService)


FORM_MEDIA_TYPES = ("multipart/", "application/x-www-form-urlencoded")


class RejectionMiddleware:
    """Every 4xx of /predict as {"error": one readable sentence, ...}, counted by reason.

    Schema errors (malformed JSON, wrong types, NaN, unknown codes) are raised by BentoML's pydantic
    parsing before the API runs, so they are counted here; HistoryError rejections are counted by the API.
    """

    def __init__(self, app: Any, path: str = PREDICT_ROUTE) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        media_type = Headers(scope=scope).get("content-type", "").split(";")[0].strip().lower()
        if scope.get("method") == "POST" and media_type.startswith(FORM_MEDIA_TYPES):
            # BentoML parses form bodies itself and fails with a 500 on a malformed one (no boundary).
            service_metrics().rejections.labels(reason="http_415").inc()
            message = f"Content-Type {media_type} is not allowed for {self.path}: send application/json"
            await JSONResponse({"error": message}, status_code=415)(scope, receive, send)
            return
        held: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and 400 <= message["status"] < 500:
                held["start"] = message
                return
            if message["type"] == "http.response.body" and "start" in held:
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = self._rewrite(held["start"]["status"], b"".join(chunks))
                headers = [(k, v) for k, v in held["start"]["headers"] if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**held["start"], "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, capture)

    def _rewrite(self, status: int, body: bytes) -> bytes:
        try:
            payload = json.loads(body)
        except ValueError:
            service_metrics().rejections.labels(reason=f"http_{status}").inc()
            return json.dumps({"error": body.decode("utf-8", "replace").strip() or f"HTTP {status}"}).encode()
        if isinstance(payload, list) and len(payload) == 1 and isinstance(payload[0], dict):
            # BentoML's shape for a BentoMLException; the API counts its own (413, 422) by reason.
            if status not in API_REJECTIONS:
                service_metrics().rejections.labels(reason=f"http_{status}").inc()
            return json.dumps(payload[0]).encode()
        if isinstance(payload, dict) and isinstance(payload.get("detail"), list):
            errors = payload["detail"]
            reason = _schema_reason(errors)
            service_metrics().rejections.labels(reason=reason).inc()
            return json.dumps({"error": _schema_message(errors), "reason": reason, "detail": errors}).encode()
        service_metrics().rejections.labels(reason=f"http_{status}").inc()
        return body


_SCHEMA_REASONS = {
    "json_invalid": "malformed_json",
    "finite_number": "not_finite",
    "literal_error": "unknown_code",
    "missing": "missing_field",
    "extra_forbidden": "unknown_field",
    "too_short": "batch_size",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
}


def _schema_reason(errors: list[dict[str, Any]]) -> str:
    kind = str(errors[0].get("type", "")) if errors else ""
    return _SCHEMA_REASONS.get(kind, "invalid_value" if kind.endswith(("_parsing", "_type")) else "invalid_request")


def _schema_message(errors: list[dict[str, Any]], shown: int = 5) -> str:
    parts = []
    for error in errors[:shown]:
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.get("loc", ())).lstrip(".")
        parts.append(f"{path or 'body'}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - shown} more)" if len(errors) > shown else ""
    return "; ".join(parts) + more


PdmService.add_asgi_middleware(RejectionMiddleware)  # type: ignore[attr-defined]  # a bentoml Service at run time
