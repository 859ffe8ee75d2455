"""The Dagster instance's settings (`dagster.yaml`), on a laptop and in AWS, made in one place.

- `local_instance(home)`: what `make ui` and `materialize` share (`dagster_home`):
  Dagster's SQLite storage in the state dir, runs executed in the launching process,
  queued runs picked up every second.
- `aws_instance()`: what the image carries (`python -m platform_tools.dagster_instance
  aws > $DAGSTER_HOME/dagster.yaml` in the Dockerfile). Storage in the orchestration
  stack's PostgreSQL, each run its own ECS task (`EcsRunLauncher`), compute logs in S3,
  one run at a time, run monitoring. Every endpoint and secret is read from the task's
  environment (`{env: VAR}`), which the stack sets: the same image serves every
  deployment.

Both turn telemetry off and queue runs through Dagster's `QueuedRunCoordinator`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cloudformation.dagster_tasks import RUN_CONTAINER, TaskEnvironment
from cloudformation.layout import COMPUTE_LOGS_PREFIX

Config = dict[str, Any]

_QUEUED_RUN_COORDINATOR = {
    "module": "dagster.core.run_coordinator",
    "class": "QueuedRunCoordinator",
}
#: Runs of a deployment, one at a time: a batch run's lake merge takes the one writer's lock,
#: and a run launched from the UI waits in the queue rather than on that lock.
MAX_CONCURRENT_RUNS = 1
#: A Fargate task takes about a minute to start (pulling the image); a run not started after
#: this long is marked failed.
RUN_START_TIMEOUT_SECONDS = 600
#: A run asked to stop that has not stopped after this long is marked canceled.
RUN_CANCEL_TIMEOUT_SECONDS = 300
RUN_MONITORING_POLL_SECONDS = 60
#: Seconds between uploads of a running step's stdout and stderr to S3.
COMPUTE_LOG_UPLOAD_SECONDS = 30
#: Days the instance keeps schedule and sensor ticks (the heartbeat sensor ticks every minute).
TICKS_KEPT_DAYS = 7


def _env(variable: str) -> dict[str, str]:
    """A value Dagster reads from the process environment when the instance loads."""
    return {"env": str(variable)}


def _common() -> Config:
    # A laptop or task offline must not wait on telemetry.
    return {"telemetry": {"enabled": False}}


def local_instance(home: Path) -> Config:
    """The local instance in `home`: SQLite storage there, runs in the launching process."""
    return {
        # Dagster's SQLite storage reusing its database engines (see `dagster_storage`).
        "storage": {
            "custom": {
                "module": "platform_tools.dagster_storage",
                "class": "LocalSqliteStorage",
                "config": {"base_dir": str(home)},
            }
        },
        **_common(),
        # The UI's first-visit dialog (a newsletter sign-up) opens over the page on every
        # fresh state dir and can swallow the first click.
        "nux": {"enabled": False},
        # A run launched from the UI waits until the daemon next looks (every 5 s by
        # default): once a second is enough for one user.
        "run_coordinator": {**_QUEUED_RUN_COORDINATOR, "config": {"dequeue_interval_seconds": 1}},
    }


def aws_instance() -> Config:
    """A deployment's instance: every value that differs per deployment from the environment."""
    return {
        "storage": {
            "postgres": {
                "postgres_db": {
                    "hostname": _env(TaskEnvironment.PG_HOST),
                    "port": _env(TaskEnvironment.PG_PORT),
                    "db_name": _env(TaskEnvironment.PG_DB),
                    "username": _env(TaskEnvironment.PG_USERNAME),
                    "password": _env(TaskEnvironment.PG_PASSWORD),
                    # The database's parameter group refuses connections without TLS.
                    "params": {"sslmode": "require"},
                }
            }
        },
        **_common(),
        "run_launcher": {
            "module": "dagster_aws.ecs",
            "class": "EcsRunLauncher",
            "config": {
                # The stack's run task definition: the orchestrator role, the awslogs driver.
                "task_definition": _env(TaskEnvironment.RUN_TASK_DEFINITION),
                "container_name": RUN_CONTAINER,
                # The daemon task's subnets and security group, no public IP.
                "use_current_ecs_task_config": True,
                # The run task definition carries the database secret; no listing of every
                # tagged secret in the account.
                "secrets_tag": None,
            },
        },
        # Dagster's QueuedRunCoordinator, in the instance's own key for it.
        "run_queue": {"max_concurrent_runs": MAX_CONCURRENT_RUNS},
        "compute_logs": {
            "module": "dagster_aws.s3.compute_log_manager",
            "class": "S3ComputeLogManager",
            "config": {
                "bucket": _env(TaskEnvironment.COMPUTE_LOG_BUCKET),
                "prefix": COMPUTE_LOGS_PREFIX.rstrip("/"),
                "region": _env("AWS_DEFAULT_REGION"),
                "upload_interval": COMPUTE_LOG_UPLOAD_SECONDS,
                "skip_empty_files": True,
            },
        },
        # A run task that dies, or never starts, is marked failed (and so notified).
        "run_monitoring": {
            "enabled": True,
            "start_timeout_seconds": RUN_START_TIMEOUT_SECONDS,
            "cancel_timeout_seconds": RUN_CANCEL_TIMEOUT_SECONDS,
            "poll_interval_seconds": RUN_MONITORING_POLL_SECONDS,
        },
        "retention": {
            "schedule": {"purge_after_days": TICKS_KEPT_DAYS},
            "sensor": {
                "purge_after_days": {
                    "skipped": TICKS_KEPT_DAYS,
                    "failure": TICKS_KEPT_DAYS,
                    "success": TICKS_KEPT_DAYS,
                }
            },
        },
    }


def render(config: Config) -> str:
    """`config` as the text of a `dagster.yaml`, keys in the order written here."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m platform_tools.dagster_instance aws`: print the deployment's dagster.yaml."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["aws"]:
        print("usage: python -m platform_tools.dagster_instance aws", file=sys.stderr)
        return 2
    sys.stdout.write(render(aws_instance()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
