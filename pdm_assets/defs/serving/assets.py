"""The champion model as a BentoML bento, then as a container image."""

from typing import Any

import dagster as dg

from pdm_assets.defs.automation import CHAMPION_MOVED, SAFE_EAGER
from pdm_assets.defs.resources import MLflowResource
from pdm_assets.lib.serving.bento import build_bento, containerize, import_model, load_champion
from pdm_assets.settings import get_settings

GROUP = "serving"
IMAGE_CHECK = "image_built"


# Rebuilt when `promotion` moves the champion alias (its data version), never after a rejection.
@dg.asset(
    group_name=GROUP, kinds={"bentoml"}, deps=["promotion"], automation_condition=CHAMPION_MOVED
)
def bento(context: dg.AssetExecutionContext, mlflow: MLflowResource) -> dg.MaterializeResult[dict[str, Any]]:
    """The MLflow version holding `champion`, imported into the BentoML store and built into a bento."""
    home = get_settings().bentoml_home
    champion = load_champion(mlflow.tracking_uri, mlflow.registered_model_name)
    model_tag = import_model(champion, home)
    built = build_bento(model_tag, champion.version, home)
    contract = champion.contract
    context.log.info(f"built {built.tag} around {model_tag} ({contract.model_uri})")
    return dg.MaterializeResult(
        value={"tag": built.tag, "model_tag": model_tag, "registered_version": contract.registered_version,
               "path": str(built.path), "endpoints": built.endpoints},
        metadata={
            "bento_tag": built.tag,
            "bentoml_model_tag": model_tag,
            "registered_version": f"{contract.registered_name}/{contract.registered_version}",
            "mlflow_run_id": contract.run_id,
            "data_source": contract.data_source,
            "threshold": contract.threshold,
            "horizon_hours": contract.horizon_hours,
            "size_bytes": built.size_bytes,
            "size_mb": round(built.size_bytes / 1e6, 2),
            "bento_files_bytes": built.files_bytes,
            "endpoints": dg.MetadataValue.json(built.endpoints),
            "python_packages": len(built.python_packages),
            "path": dg.MetadataValue.path(str(built.path)),
            "serve": dg.MetadataValue.md(
                f"`BENTOML_HOME={home.resolve()} bentoml serve {built.tag}` (or `make serve`)"
            ),
        },
    )


@dg.asset(
    group_name=GROUP,
    kinds={"docker"},
    automation_condition=SAFE_EAGER,
    check_specs=[dg.AssetCheckSpec(IMAGE_CHECK, asset="bento_container",
                                   description="An image was built; fails (warning) when no container engine ran.")],
)
# No return annotation: with check_specs, Dagster would read MaterializeResult[...] as several outputs.
def bento_container(context: dg.AssetExecutionContext, bento: dict[str, Any]):
    """`bentoml containerize` with PDM_CONTAINER_BACKEND; without an engine, the Dockerfile only, and a warning."""
    settings = get_settings()
    result = containerize(bento["tag"], settings.container_backend, settings.bentoml_home)
    common = {"status": result.status, "backend": result.backend, "bento_tag": bento["tag"],
              "containerfile": dg.MetadataValue.path(str(result.containerfile)),
              "build_context": dg.MetadataValue.path(str(result.build_context))}
    if result.status == "skipped":
        context.log.warning(result.reason)
        metadata = {**common, "reason": result.reason}
        check = dg.AssetCheckResult(check_name=IMAGE_CHECK, passed=False, severity=dg.AssetCheckSeverity.WARN,
                                    metadata={"reason": result.reason})
    else:
        assert result.size_bytes is not None
        context.log.info(f"built {result.image} ({result.image_id}) with {result.backend}")
        metadata = {**common, "image": str(result.image), "image_id": str(result.image_id),
                    "size_bytes": result.size_bytes, "size_mb": round(result.size_bytes / 1e6, 1),
                    "build_log_tail": dg.MetadataValue.md(f"```\n{result.log_tail}\n```"),
                    "run": dg.MetadataValue.md(f"`{result.backend} run -p 3000:3000 {result.image}`")}
        check = dg.AssetCheckResult(check_name=IMAGE_CHECK, passed=True,
                                    metadata={"image": str(result.image), "image_id": str(result.image_id)})
    value = {"status": result.status, "backend": result.backend, "image": result.image, "image_id": result.image_id,
             "size_bytes": result.size_bytes, "reason": result.reason, "containerfile": str(result.containerfile)}
    return dg.MaterializeResult(value=value, metadata=metadata, check_results=[check])
