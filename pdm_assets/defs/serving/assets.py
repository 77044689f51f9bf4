"""The champion model as a BentoML bento, then as a container image."""

import dagster as dg

from pdm_assets.defs.automation import CHAMPION_MOVED, SAFE_EAGER
from pdm_assets.defs.resources import MLflowResource, ProjectSettings
from pdm_assets.lib.serving.bento import BuiltBento, ContainerResult, build_champion_bento, containerize

GROUP = "serving"
IMAGE_CHECK = "image_built"


# Rebuilt when `promotion` moves the champion alias (its data version), never after a rejection.
@dg.asset(
    group_name=GROUP, kinds={"bentoml"}, deps=["promotion"], automation_condition=CHAMPION_MOVED
)
def bento(
    context: dg.AssetExecutionContext, settings: ProjectSettings, mlflow: MLflowResource
) -> dg.MaterializeResult[BuiltBento]:
    """The MLflow version holding `champion`, imported into the BentoML store and built into a bento."""
    home = settings.get().bentoml_home
    built = build_champion_bento(mlflow.tracking_uri, mlflow.registered_model_name, home, log=context.log.info)
    contract = built.contract
    return dg.MaterializeResult(
        value=built,
        metadata={
            "bento_tag": built.tag,
            "bentoml_model_tag": built.model_tag,
            "registered_version": f"{contract['registered_name']}/{contract['registered_version']}",
            "mlflow_run_id": contract["run_id"],
            "data_source": contract["data_source"],
            "threshold": contract["threshold"],
            "horizon_hours": contract["horizon_hours"],
            "size_bytes": built.size_bytes,
            "size_mb": round(built.size_bytes / 1e6, 2),
            "bento_files_bytes": built.files_bytes,
            "endpoints": dg.MetadataValue.json(built.endpoints),
            "python_packages": len(built.python_packages),
            "path": dg.MetadataValue.path(str(built.path)),
            "serve": dg.MetadataValue.md(f"`BENTOML_HOME={home.resolve()} bentoml serve {built.tag}` or `make serve`"),
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
def bento_container(context: dg.AssetExecutionContext, settings: ProjectSettings, bento: BuiltBento):
    """`bentoml containerize` with PDM_CONTAINER_BACKEND; without an engine, the Dockerfile only, and a warning."""
    config = settings.get()
    result: ContainerResult = containerize(bento.tag, config.container_backend, config.bentoml_home,
                                           log=context.log.info)
    common = {"status": result.status, "backend": result.backend, "bento_tag": bento.tag,
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
                    "run": dg.MetadataValue.md(f"`{result.backend} run -p 3100:3100 {result.image}`")}
        check = dg.AssetCheckResult(check_name=IMAGE_CHECK, passed=True,
                                    metadata={"image": str(result.image), "image_id": str(result.image_id)})
    return dg.MaterializeResult(value=result, metadata=metadata, check_results=[check])
