"""Operator commands: `python -m pdm_assets.cli rollback --version N` and `champion`."""

from __future__ import annotations

import argparse
import json
import sys

from mlflow.exceptions import MlflowException

from pdm_assets.lib.tracking import CHAMPION_ALIAS, alias_history, alias_version, set_alias
from pdm_assets.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    """Move the champion alias back to an earlier version, or show where it points and how it moved."""
    parser = argparse.ArgumentParser(prog="pdm_assets.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    rollback = commands.add_parser("rollback", help="point the champion alias at an earlier registered version")
    rollback.add_argument("--version", required=True, help="registered model version, e.g. 3")
    rollback.add_argument("--reason", default="manual rollback")
    commands.add_parser("champion", help="print the champion version and the alias history as JSON")
    args = parser.parse_args(argv)

    settings = get_settings()
    uri, name = settings.mlflow_tracking_uri, settings.registered_model_name
    if args.command == "rollback":
        if not str(args.version).isdigit():
            parser.error(f"--version must be a registered version number, got {args.version!r}")
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
    sys.exit(main())
