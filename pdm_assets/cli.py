"""Operator commands: `python -m pdm_assets.cli summary | serve | rollback --version N | champion | report`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from pdm_assets.lib.evaluation.summary import RunFacts, render_summary
from pdm_assets.settings import Settings, get_settings

RAW_TABLES = ("telemetry", "errors", "maint", "failures", "machines")


def main(argv: list[str] | None = None) -> int:
    """Summarize the last run, serve the champion, or move the champion alias back to an earlier version."""
    parser = argparse.ArgumentParser(prog="pdm_assets.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("summary", help="what the last materialization of every asset produced")
    serve = commands.add_parser("serve", help="`bentoml serve` the bento built for the current champion")
    serve.add_argument("--port", type=int, default=3100)
    serve.add_argument("--host", default="127.0.0.1")
    rollback = commands.add_parser("rollback", help="point the champion alias at an earlier registered version")
    rollback.add_argument("--version", required=True, help="registered model version, e.g. 3")
    rollback.add_argument("--reason", default="manual rollback")
    commands.add_parser("champion", help="print the champion version and the alias history as JSON")
    trust = commands.add_parser("trust", help="record the sha256 of a version registered before models were hashed")
    trust.add_argument("--version", required=True, help="registered model version, e.g. 3")
    commands.add_parser("report", help="score the latest complete day, then write reports/fleet_report.html")
    args = parser.parse_args(argv)

    settings = get_settings()
    if args.command == "summary":
        print(render_summary(run_facts(settings)))
        return 0
    if args.command == "serve":
        return serve_champion(settings, args.host, args.port)
    if args.command == "report":
        from pdm_assets.defs.planning.report_run import make_report

        print(f"wrote {make_report(settings)}")
        return 0
    return alias_command(settings, args, parser)


def run_facts(settings: Settings) -> RunFacts:
    """The latest materialization of each asset in the Dagster instance, plus the evaluation report."""
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        def metadata(key: str) -> dict[str, Any]:
            event = instance.get_latest_materialization_event(dg.AssetKey(key))
            materialization = event.asset_materialization if event else None
            if materialization is None:
                return {}
            return {name: getattr(value, "value", value) for name, value in materialization.metadata.items()}

        rows = {name: metadata(f"raw_{name}").get("dagster/row_count") for name in RAW_TABLES}
        provenance, promotion, bento = metadata("raw_provenance"), metadata("promotion"), metadata("bento")
        container = metadata("bento_container")
    report_path = settings.reports_dir / "evaluation.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return RunFacts(
        data_source=provenance.get("data_source"), rows=rows, promotion=promotion, report=report,
        bento_tag=bento.get("bento_tag"), image=container.get("image") or container.get("reason"),
        reports_dir=settings.reports_dir,
    )


def serve_champion(settings: Settings, host: str, port: int) -> int:
    """`bentoml serve` the champion's bento from the store the settings name (replaces this process)."""
    from pdm_assets.lib.serving.bento import bento_path, champion_tag

    tag = champion_tag(settings.mlflow_tracking_uri, settings.registered_model_name)
    home = settings.bentoml_home.resolve()
    if not bento_path(home, tag).is_dir():
        print(f"the champion's bento {tag} is not in {home}: materialize it with "
              "`uv run dg launch --assets bento` (or `make run`)", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "bentoml", "serve", tag, "--host", host, "--port", str(port)]
    os.execve(sys.executable, command, {**os.environ, "BENTOML_HOME": str(home)})


def alias_command(settings: Settings, args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from mlflow.exceptions import MlflowException

    from pdm_assets.lib.tracking import CHAMPION_ALIAS, alias_history, alias_version, set_alias, trust_version

    uri, name = settings.mlflow_tracking_uri, settings.registered_model_name
    if args.command in ("rollback", "trust") and not str(args.version).isdigit():
        parser.error(f"--version must be a registered version number, got {args.version!r}")
    if args.command == "trust":
        try:
            digest = trust_version(uri, name, str(args.version))
        except MlflowException as error:
            print(f"cannot record the digest of {name} version {args.version}: {error.message}", file=sys.stderr)
            return 2
        print(f"{name}/{args.version}: sha256 {digest} recorded; loads now check the artifact against it")
        return 0
    if args.command == "rollback":
        try:
            set_alias(uri, name, str(args.version), CHAMPION_ALIAS, reason=args.reason)
        except MlflowException as error:
            print(f"cannot roll back {name} to version {args.version}: {error.message}", file=sys.stderr)
            return 2
        print(f"{name}@{CHAMPION_ALIAS} -> version {args.version}; rebuild the bento to serve it")
        return 0
    print(json.dumps({"champion": alias_version(uri, name), "history": alias_history(uri, name)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
