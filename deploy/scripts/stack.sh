#!/usr/bin/env bash
# The local stack of deploy/compose.yaml: build the images this repository defines, then start or stop.
#
#   deploy/scripts/stack.sh up [SERVICE...]   build what is missing, start (all services by default)
#   deploy/scripts/stack.sh down [-v]         stop and remove the containers (-v: and the volumes)
#   deploy/scripts/stack.sh ps | logs SERVICE
#
# ENGINE (podman|docker, default: podman when present) builds images; COMPOSE (default: podman-compose,
# else `docker compose`) runs the file. REBUILD=1 rebuilds images that exist. The bento image is
# `bentoml containerize` of PDM_BENTO_TAG, else of the champion's bento in the project's BentoML store,
# else of a demo bento trained on a small synthetic fleet (deploy/scripts/demo_bento.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
FILE=deploy/compose.yaml
PROJECT=${PDM_STACK_PROJECT:-pdm}   # container names pdm_<service>_1 (podman-compose ignores `name:`)
ENGINE=${ENGINE:-$(command -v podman >/dev/null && echo podman || echo docker)}
if [ -z "${COMPOSE:-}" ]; then
  if command -v podman-compose >/dev/null; then COMPOSE=podman-compose; else COMPOSE="docker compose"; fi
fi
UV=${UV:-$(command -v uv || echo "$HOME/.local/bin/uv")}
CODE_IMAGE=${PDM_CODE_IMAGE:-localhost/pdm-assets-code:latest}
SERVICE_IMAGE=${PDM_SERVICE_IMAGE:-localhost/pdm_service:latest}

have_image() { [ "${REBUILD:-0}" != 1 ] && $ENGINE image inspect "$1" >/dev/null 2>&1; }

build() {  # build IMAGE CONTEXT [CONTAINERFILE]
  local image=$1 context=$2 file=${3:-$2/Containerfile}
  if have_image "$image"; then echo "image $image: present"; return; fi
  echo "image $image: building from $file"
  if [ "$ENGINE" = podman ]; then
    podman build --pull=never --format docker -t "$image" -f "$file" "$context"
  else
    docker build -t "$image" -f "$file" "$context"
  fi
}

bento_image() {
  if have_image "$SERVICE_IMAGE"; then echo "image $SERVICE_IMAGE: present"; return; fi
  local tag=${PDM_BENTO_TAG:-} home
  home=$("$UV" run python -c 'from pdm_assets.settings import get_settings; print(get_settings().bentoml_home.resolve())')
  if [ -z "$tag" ]; then
    tag=$("$UV" run python -m pdm_assets.lib.serving.bento tag 2>/dev/null || true)
    if [ -n "$tag" ] && [ ! -d "$home/bentos/${tag%%:*}/${tag#*:}" ]; then tag=""; fi
  fi
  if [ -z "$tag" ]; then
    echo "no champion bento in $home: training a demo model on a small synthetic fleet"
    local out
    out=$("$UV" run python deploy/scripts/demo_bento.py --workdir "$ROOT/data/stack-demo" | tail -1)
    tag=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["tag"])' "$out")
    home=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["bentoml_home"])' "$out")
  fi
  echo "image $SERVICE_IMAGE: bentoml containerize $tag"
  BENTOML_HOME=$home "$UV" run bentoml containerize "$tag" --backend "$ENGINE" -t "$SERVICE_IMAGE"
}

case "${1:-}" in
  up)
    shift
    build "$CODE_IMAGE" . Dockerfile
    build localhost/pdm-prometheus:latest deploy/containers/prometheus
    if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx mlflow; then
      build localhost/pdm-mlflow:latest deploy/containers/mlflow
    fi
    case "${PDM_POSTGRES_IMAGE:-}" in  # the official image unless PDM_POSTGRES_IMAGE names the local one
      localhost/pdm-postgres*) build "$PDM_POSTGRES_IMAGE" deploy/containers/postgres ;;
    esac
    if [ $# -eq 0 ] || printf '%s\n' "$@" | grep -qx pdm-service; then bento_image; fi
    # images are built above; compose only starts containers
    $COMPOSE -p "$PROJECT" -f "$FILE" up -d --no-build "$@"
    $COMPOSE -p "$PROJECT" -f "$FILE" ps
    echo "Dagster http://127.0.0.1:${PDM_DAGSTER_PORT:-3000}  MLflow http://127.0.0.1:${PDM_MLFLOW_PORT:-5000}" \
         " service http://127.0.0.1:${PDM_SERVICE_PORT:-3100}  Prometheus http://127.0.0.1:${PDM_PROMETHEUS_PORT:-9090}" \
         " Grafana http://127.0.0.1:${PDM_GRAFANA_PORT:-3200}"
    ;;
  down)
    shift
    $COMPOSE -p "$PROJECT" -f "$FILE" down "$@"
    ;;
  ps) $COMPOSE -p "$PROJECT" -f "$FILE" ps ;;
  logs) shift; $COMPOSE -p "$PROJECT" -f "$FILE" logs "$@" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
