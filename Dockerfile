# The production image: the Dagster code location, the dbt project and a deployment's
# instance settings ($DAGSTER_HOME/dagster.yaml). Every Dagster task of the orchestration
# stack runs it: the webserver, the daemon and each run. It has no ENTRYPOINT: ECS gives
# each task its command, and a run's task gets `dagster api execute_run ...` from the run
# launcher.
#
# Built by the orchestration stack's CodeBuild project from the source `stack deploy`
# uploads; with Docker at hand: docker build --tag iot-data-platform .
FROM public.ecr.aws/docker/library/python:3.11-slim-bookworm

# The uv the Makefile bootstraps; the project installs from uv.lock, nothing resolved here.
ARG UV_VERSION=0.13.9
ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/dagster/venv \
    PATH=/opt/dagster/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/home

RUN pip install --no-cache-dir "uv==${UV_VERSION}" \
    && groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid 10001 --home-dir /opt/dagster --no-create-home dagster

WORKDIR /opt/dagster/app

# The dependencies first, exactly as locked (no development extras): this layer is built
# again only when the lock changes.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project --no-cache

COPY stream_processor ./stream_processor
COPY cloudformation ./cloudformation
COPY pipeline_platform ./pipeline_platform
COPY local_cloud ./local_cloud
COPY platform_tools ./platform_tools
COPY dbt_redshift ./dbt_redshift
COPY workspace.yaml ./

# The project itself (editable: the code location finds the dbt project beside it), the
# instance settings, and dbt's manifest parsed once here rather than by every task. The
# parse reads no warehouse: the profile's host and user only have to be set.
RUN uv sync --locked --no-dev --no-cache \
    && mkdir -p "$DAGSTER_HOME" \
    && python -m platform_tools.dagster_instance aws > "$DAGSTER_HOME/dagster.yaml" \
    && REDSHIFT_HOST=parse-only REDSHIFT_USER=parse-only \
       python -c "from pipeline_platform.resources.dbt import dbt_project; dbt_project('redshift')" \
    && mkdir -p dbt_redshift/logs \
    && chown -R dagster:dagster "$DAGSTER_HOME" dbt_redshift/target dbt_redshift/logs

# Dagster writes its compute-log staging under $DAGSTER_HOME, dbt its run results under
# target/; everything else belongs to root. (The numeric id: the user named in the image
# needs no lookup on the host.)
USER 10001:10001
