"""Failure predictions over HTTP from raw machine history, with the feature code that trained the model.

The request carries raw telemetry, errors and maintenance; features come from
`pdm_assets.lib.modelling.features.build_features` (through `pdm_assets.lib.serving.history_arrays`), and the
threshold, horizon, feature list and lookbacks from the packed model's metadata (`ServingContract`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Annotated, Any

import bentoml
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bentos.pdm_service.drain import Drain
from bentos.pdm_service.errors import ModelNotLoaded, Rejected
from bentos.pdm_service.guard import RequestGuard
from bentos.pdm_service.metrics import serve_metrics_port, service_metrics
from pdm_assets.lib.serving.batching import CoalescingBatcher, merged_or_each
from pdm_assets.lib.serving.contract import (
    EARLY_WARNING_OBJECT,
    MODEL_ROUTE,
    PREDICT_ROUTE,
    SERVICE_NAME,
    ServingContract,
    check_scores,
    predictions,
)
from pdm_assets.lib.serving.explain import OnDemandExplainer, wants_explanation
from pdm_assets.lib.serving.history_arrays import HistoryError, features_for_histories
from pdm_assets.lib.serving.model_file import load_head, load_model
from pdm_assets.lib.serving.prediction_log import MONITOR_NAME, log_predictions, monitor_options
from pdm_assets.lib.serving.schema import Histories, Limits, MachineHistory, Prediction
from pdm_assets.settings import get_settings

logger = logging.getLogger("bentoml.service.pdm")
SETTINGS = get_settings()
SERVICE_PORT = 3100  # Dagster's UI keeps its own 3000, MLflow 5000 (docs/operations.md)

# The packages come from bentos/requirements.txt through [tool.bentoml.build] in pyproject.toml. Every package
# installs from wheels, so no apt layer is needed: a distro name BentoML does not know ("slim") keeps it from
# adding its default one (compilers, git: about 250 MB) to the python:3.11-slim base.
IMAGE = bentoml.images.Image(base_image="python:3.11-slim", distro="slim", python_version="3.11")
# Memory: each request a worker holds is held parsed, about 9 times its body. The worker admits at most the
# bodies of IN_FLIGHT_REQUESTS_OF_MAX_SIZE full PDM_MAX_REQUEST_BYTES requests at once (~300 MB parsed at the
# default 8.2 MB) and answers 429 past that, so two workers and their models fit the 2 GiB pod whatever clients
# send; a request is always admitted when the worker holds none. Requests: traffic.max_concurrency, which
# BentoML splits over the workers, bounds the queue: 32 per worker of the pod's two, 2 per scoring thread,
# about 0.5 s of work at one 24 h history each; past it BentoML answers 429 at once rather than let a request
# wait towards the 60 s timeout. Worked out in docs/operations.md.
IN_FLIGHT_REQUESTS_OF_MAX_SIZE = 4
MAX_CONCURRENCY = 64
DRAIN = Drain()  # one per worker process


class ServiceArgs(BaseModel):
    """Build-time arguments, stored in the bento: which BentoML model to pack and serve."""

    model_tag: str = f"{SETTINGS.registered_model_name}:latest"


ARGS = bentoml.use_arguments(ServiceArgs)


async def model_card_endpoint(request: Request) -> JSONResponse:
    service = bentoml.get_current_service()
    if service.contract is None:
        return JSONResponse({"error": f"no model loaded: {service.not_ready_reason}"}, status_code=503)
    return JSONResponse(service.model_card())


# GET /model; mounted at the root so that the exact path matches (other paths pass through to the service).
@bentoml.asgi_app(Starlette(routes=[Route(MODEL_ROUTE, model_card_endpoint, methods=["GET"])]), path="/")
@bentoml.service(
    name=SERVICE_NAME,
    image=IMAGE,
    description="P(component failure within the model's horizon) from raw machine history.",
    http={"port": SERVICE_PORT},
    traffic={"timeout": 60, "max_concurrency": MAX_CONCURRENCY},
    # Threads wait while one of them scores for all (CoalescingBatcher); with one, requests never overlap.
    threads=SETTINGS.serving_threads,
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
        self.early_warning: Any = None  # the second head, when the model has one
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
            pipeline = load_model(stored)  # after checking the file's sha256 against the model's metadata
            check_scores(pipeline, contract)
            early_warning = None if contract.early_warning is None else load_head(stored, EARLY_WARNING_OBJECT)
            if contract.early_warning is not None:
                if early_warning is None:
                    raise LookupError(f"the metadata describes an early-warning head but {self.model_tag} packs none")
                check_scores(early_warning, contract.early_warning)
        except Exception as error:  # whatever a broken model raises, the service must stay up and unready
            self.not_ready_reason = f"model {self.model_tag} could not be loaded: {type(error).__name__}: {error}"
            logger.error("not ready: %s", self.not_ready_reason)
            return
        self.pipeline, self.contract, self.early_warning = pipeline, contract, early_warning
        self.explainer = OnDemandExplainer(pipeline)
        self.prediction_log = monitor_options(SETTINGS.prediction_log_dir)
        self.model_version = f"{contract.registered_name}/{contract.registered_version} ({self.bento_tag})"
        self.metrics.model_info.labels(version=contract.registered_version, bento_tag=self.bento_tag).set(1)
        self.metrics.trained.set(contract.trained_at)
        logger.info("serving %s, threshold %.4f, horizon %d h", self.model_version, contract.threshold,
                    contract.horizon_hours)
        # Everything loaded so far lives as long as the worker: out of the collector's sight, a full
        # collection walks only what requests allocate (it otherwise stalls every request for ~150 ms).
        gc.collect()
        gc.freeze()

    @bentoml.on_startup
    def _serve_like_production(self) -> None:
        """Under `bentoml serve` only: the drain on SIGTERM, and the metrics port (worker 1 serves it)."""
        DRAIN.install(SETTINGS.drain_seconds)
        if SETTINGS.metrics_port is not None and bentoml.server_context.worker_index in (None, 1):
            serve_metrics_port(SETTINGS.metrics_host, SETTINGS.metrics_port)

    def __is_ready__(self) -> bool:
        return self.pipeline is not None and not DRAIN.draining

    @bentoml.api(route=PREDICT_ROUTE)
    def predict(
        self,
        histories: Histories,
        explain: Annotated[bool, Field(description="Add each prediction's reasons (also ?explain=true).")] = False,
        ctx=None,  # the bentoml.Context, injected when served (unannotated: optional in-process)
    ) -> list[Prediction]:
        """P(failure within the horizon) for each machine history, in request order."""
        if self.pipeline is None or self.contract is None:
            raise ModelNotLoaded(f"no model loaded: {self.not_ready_reason}")
        self._use_one_thread()
        outcome = self.batcher(histories)
        if isinstance(outcome, HistoryError):
            rejected = Rejected.from_history_error(outcome)
            self.metrics.rejections.labels(reason=rejected.reason).inc()
            raise rejected from outcome
        self.metrics.batch_size.observe(len(histories))
        alerts = sum(p.alert for p in outcome)
        if alerts:
            self.metrics.predictions.labels(alert="true").inc(alerts)
        if len(outcome) - alerts:
            self.metrics.predictions.labels(alert="false").inc(len(outcome) - alerts)
        for p in outcome:
            self.metrics.probability.observe(p.failure_probability)
        if wants_explanation(ctx.request.query_params.get("explain") if ctx is not None else None, explain):
            outcome = self._explained(histories, outcome)
        with bentoml.monitor(MONITOR_NAME, monitor_options=self.prediction_log) as monitor:
            log_predictions(monitor, outcome)
        return outcome

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
        features = features_for_histories(histories, limits=self.limits, baseline_hours=self.contract.baseline_hours)
        self.metrics.feature_seconds.observe(time.perf_counter() - start)
        self.metrics.scored_together.observe(len(histories))
        return predictions(self.pipeline, self.contract, features, self.model_version, self.early_warning)

    def _use_one_thread(self) -> None:
        """One OpenMP/BLAS thread in each thread that scores: a thread team costs more than it saves on
        a few rows, and spinning teams of concurrent requests starve each other. OpenMP keeps the limit
        per calling thread, so it is set once in each of the server's worker threads."""
        if not getattr(self._single_threaded, "done", False):
            from threadpoolctl import threadpool_limits

            threadpool_limits(1)
            self._single_threaded.done = True

    def model_card(self) -> dict[str, Any]:
        """The served model: its contract (versions, training data and period, threshold, features, figures)
        and what serves it."""
        if self.contract is None:
            raise ModelNotLoaded(f"no model loaded: {self.not_ready_reason}")
        return {**self.contract.model_dump(mode="json"), "model_version": self.model_version,
                "bento_tag": self.bento_tag, "bentoml_model_tag": self.model_tag, "limits": vars(self.limits)}


def _bento_tag() -> str:
    """The tag of the bento being served, or a marker when the service runs from source."""
    bento = getattr(PdmService, "bento", None)
    if bento is not None:
        return str(bento.tag)
    name, bento_version = bentoml.server_context.bento_name, bentoml.server_context.bento_version
    return f"{name}:{bento_version}" if name else "source"


PdmService.add_asgi_middleware(  # type: ignore[attr-defined]  # a bentoml Service at run time
    RequestGuard, predict_path=PREDICT_ROUTE, api_keys=SETTINGS.api_key_list(),
    max_request_bytes=SETTINGS.request_byte_limit(),
    in_flight_bytes=IN_FLIGHT_REQUESTS_OF_MAX_SIZE * SETTINGS.request_byte_limit(),
    metrics_elsewhere=SETTINGS.metrics_port is not None,
    draining=lambda: DRAIN.draining,
)
