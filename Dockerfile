# The Dagster code location for pdm-assets: `dagster code-server start` serving pdm_assets.definitions on port 4000.
# Build: podman build --pull=never --format docker -t pdm-assets-code .   (docker build works the same)
# Run:   podman run -d -p 127.0.0.1:4000:4000 -e PDM_DATA_SOURCE=synthetic pdm-assets-code
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# uv itself, pinned to the version that wrote uv.lock.
RUN python -m pip install --no-cache-dir "uv==0.13.9" \
 && useradd --create-home --uid 10001 --user-group dagster

WORKDIR /app
# Dependencies first (a layer that changes only with the lock), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra deploy --no-install-project --no-cache
COPY workspace.yaml ./
COPY bentos ./bentos
COPY pdm_assets ./pdm_assets
RUN uv sync --frozen --no-dev --extra deploy --no-cache

# Code and environment stay root-owned and read-only; runs write MLflow, BentoML, reports and
# Dagster storage under the non-root user's working directory.
USER dagster
WORKDIR /home/dagster/work
ENV DAGSTER_HOME=/home/dagster/work/.dagster_home
RUN mkdir -p "$DAGSTER_HOME" && touch "$DAGSTER_HOME/dagster.yaml"

EXPOSE 4000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["dagster", "api", "grpc-health-check", "-p", "4000"]
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "pdm_assets.definitions"]
