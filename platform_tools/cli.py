"""The `pipeline-platform` command line: the local cloud, devices, queries, stacks and runs."""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import re
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import NoReturn

from cloudformation.naming import STREAMING_STACK
from cloudformation.outputs import StreamingOutput
from local_cloud.defaults import (
    AWS_PORT,
    CREDENTIALS,
    ENDPOINT_URL,
    HOST,
    LOOPBACK_HOSTS,
    MQTT_PORT,
    REGION,
    STATE_DIR,
    TOPIC,
)
from platform_tools.stopping import INTERRUPTED_EXIT

ENV_ENDPOINT_URL = "AWS_ENDPOINT_URL"

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: float | None = None) -> float:
    """Epoch seconds from `30m`, `24h`, `7d` (ago), an ISO-8601 time or date, or epoch seconds."""
    now = dt.datetime.now(dt.UTC).timestamp() if now is None else now
    match = _RELATIVE.match(text)
    if match:
        return now - float(match[1]) * _UNIT_SECONDS[match[2]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time: {text!r} (use 30m, 24h, 7d, an ISO-8601 time or epoch seconds)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def duration_seconds(text: str) -> float:
    """Seconds from `90`, `90s`, `2m` or `1h`, for the duration options."""
    match = _RELATIVE.match(text)
    if match:
        return float(match[1]) * _UNIT_SECONDS[match[2]]
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if seconds < 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use 90, 90s, 2m or 1h)")
    return seconds


def port_number(text: str) -> int:
    """A TCP port, 1..65535, for the port options."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (1..65535): {text!r}")
    return port


def _endpoint(args: argparse.Namespace) -> str:
    """The AWS endpoint a command talks to: `--endpoint-url`, `$AWS_ENDPOINT_URL`, or the local
    cloud's."""
    return getattr(args, "endpoint_url", None) or os.environ.get(ENV_ENDPOINT_URL) or ENDPOINT_URL


def _talks_to(args: argparse.Namespace) -> str | None:
    """The AWS endpoint a command will reach, None for real AWS (or no AWS at all)."""
    if args.command in ("up", "ui", "demo"):
        return None  # they run a local cloud of their own and set its credentials themselves
    if args.command == "publish" and not args.via_iot_data:
        return None  # MQTT only
    if args.command in ("stack", "aws-ui") or os.environ.get("PLATFORM_ENV", "local") != "local":
        # Deploying, a deployment's UI and `aws` runs go to real AWS unless the environment
        # points elsewhere.
        return os.environ.get(ENV_ENDPOINT_URL)
    return _endpoint(args)


def _use_local_credentials_on_loopback(args: argparse.Namespace) -> None:
    """On a loopback endpoint, the local cloud's credentials when the shell has none.

    The one place the CLI decides this, for every command (`materialize` included): the
    local cloud accepts any credentials, so a laptop without an AWS profile works; a
    real endpoint always uses the caller's own credentials, and credentials the shell
    names (keys, or a profile) are used as they are, wherever they go.
    """
    endpoint = _talks_to(args)
    if endpoint is None:
        return
    host = urllib.parse.urlparse(endpoint).hostname or ""
    named = "AWS_ACCESS_KEY_ID" in os.environ or "AWS_PROFILE" in os.environ
    if host in LOOPBACK_HOSTS and not named:
        os.environ.update(CREDENTIALS)


def _usage_error(message: str) -> NoReturn:
    """End the command on arguments that cannot work: one line, exit status 2 (as argparse)."""
    print(f"pipeline-platform: {message}", file=sys.stderr)
    raise SystemExit(2)


def _fail(args: argparse.Namespace, error: BaseException | str) -> NoReturn:
    """End the command with `error` as one clear line on stderr and exit status 1."""
    raise SystemExit(f"pipeline-platform {args.command}: {error}")


# --- commands -------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    """Run the local cloud until Ctrl-C or SIGTERM (which stop it in any phase)."""
    from local_cloud.cloud import LocalCloud, LocalCloudError
    from local_cloud.ports import PortInUse, require_free
    from platform_tools.stopping import StopRequested, stop_on_signals

    hint = "another `pipeline-platform up` may be running; stop it, or pass --aws-port/--mqtt-port"
    with stop_on_signals():
        try:
            require_free(
                {"the AWS emulator": args.aws_port, "the MQTT broker": args.mqtt_port}, hint=hint
            )
        except PortInUse as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        cloud = LocalCloud(
            state_dir=args.state_dir,
            aws_port=args.aws_port,
            mqtt_port=args.mqtt_port,
            fresh=args.fresh,
        )
        try:
            endpoints = cloud.start(log_progress=lambda m: print(f"... {m}", flush=True))
            streaming = endpoints.outputs[STREAMING_STACK]
            print(f"AWS endpoint      {endpoints.aws}   (aws --endpoint-url {endpoints.aws} ...)")
            print(f"MQTT broker       {endpoints.mqtt_host}:{endpoints.mqtt_port}")
            print(f"Table             {streaming[StreamingOutput.TABLE_NAME]}")
            print(f"Stream            {streaming[StreamingOutput.STREAM_NAME]}")
            print(f"Quarantine bucket {streaming[StreamingOutput.QUARANTINE_BUCKET_NAME]}")
            print(f"Warehouse         {endpoints.warehouse}")
            print(f"Function logs     {endpoints.function_logs}/<function name>.log")
            print(
                f"State             {endpoints.state_dir} (kept across restarts; --fresh empties)"
            )
            print("ready: local cloud is up (Ctrl-C to stop)", flush=True)
            threading.Event().wait()  # until a signal raises StopRequested
        except StopRequested:
            pass
        except (PortInUse, LocalCloudError) as error:  # a port lost to a race, a state dir in use
            print(f"error: {error}", file=sys.stderr)
            return 2
        finally:
            print("stopping the local cloud", flush=True)
            cloud.stop()
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Publish one payload to a topic, over MQTT or the IoT Data API."""
    from platform_tools import device_simulator

    payload = Path(args.file).read_bytes() if args.file else args.payload.encode()
    if args.via_iot_data:
        device_simulator.publish_via_iot_data(
            args.topic, payload, endpoint_url=_endpoint(args), region=args.region
        )
    else:
        try:
            device_simulator.publish(
                args.topic, payload, host=args.host, port=args.port, qos=args.qos
            )
        except device_simulator.PublishError as error:
            _fail(args, error)
    print(f"published {len(payload)} bytes to {args.topic}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run a simulated device fleet over MQTT and print what it published.

    Ctrl-C or SIGTERM stops it within seconds; it still prints what it published and
    exits with status 130, as an interrupted command does.
    """
    from platform_tools import device_simulator
    from platform_tools.stopping import TOOL_STOP_GRACE_SECONDS, stop_on_signals

    stop = threading.Event()
    with stop_on_signals(grace=TOOL_STOP_GRACE_SECONDS, notify=stop):
        try:
            summary = device_simulator.simulate(
                devices=args.devices,
                rate=args.rate,
                duration=args.duration,
                malformed_share=args.malformed_share,
                host=args.host,
                port=args.port,
                seed=args.seed,
                stop=stop,
            )
        except (device_simulator.PublishError, ValueError) as error:
            _fail(args, error)
    print(json.dumps(summary.as_dict(), indent=2))
    return INTERRUPTED_EXIT if summary.interrupted else 0


def cmd_query(args: argparse.Namespace) -> int:
    """The real-time queries: latest per device, a device's history, recent alerts."""
    import boto3

    from cloudformation.naming import Naming
    from platform_tools import realtime_queries
    from stream_processor import contract

    client = boto3.client("dynamodb", endpoint_url=_endpoint(args), region_name=args.region)
    table = args.table or Naming(args.env, args.region).table
    columns = [
        contract.DEVICE_ID,
        contract.TIMESTAMP,
        contract.TEMPERATURE,
        contract.HUMIDITY,
        contract.ALERTS,
        contract.QUALITY_FLAGS,
    ]
    if args.what == "latest":
        rows = realtime_queries.latest(client, table)
    elif args.what == "device":
        rows = realtime_queries.device_history(
            client, table, args.device_id, args.since, args.limit
        )
    else:
        since = args.since if args.since is not None else parse_since("24h")
        rows = realtime_queries.recent_alerts(client, table, since)
        columns = [
            contract.DEVICE_ID,
            contract.TIMESTAMP,
            contract.TEMPERATURE,
            contract.HUMIDITY,
            contract.ALERTS,
        ]
    for row in rows:
        row["time"] = dt.datetime.fromtimestamp(row[contract.TIMESTAMP], dt.UTC).isoformat()
    print(realtime_queries.format_table(rows, ["time", *columns]))
    print(f"({len(rows)} rows)")
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    """Print the alert topic's notifications as they arrive (`alerts tail`), until Ctrl-C,
    SIGTERM, `--count` notifications or `--seconds`."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from cloudformation.naming import Naming
    from platform_tools import alerts
    from platform_tools.stopping import TOOL_STOP_GRACE_SECONDS, stop_on_signals

    def emit(body: dict[str, object]) -> None:
        print(json.dumps(body) if args.json else alerts.format_notification(body), flush=True)

    def ready() -> None:
        print(f"tailing the alert topic of {args.env} (Ctrl-C stops)", file=sys.stderr, flush=True)

    stop = threading.Event()
    with stop_on_signals(grace=TOOL_STOP_GRACE_SECONDS, notify=stop):
        try:
            alerts.tail(
                boto3.Session(region_name=args.region),
                Naming(args.env, args.region),
                endpoint_url=_endpoint(args),
                emit=emit,
                count=args.count,
                seconds=args.seconds,
                stop=stop,
                ready=ready,
            )
        except (BotoCoreError, ClientError, KeyError) as error:
            _fail(args, error)
    return INTERRUPTED_EXIT if stop.is_set() else 0


def cmd_stack(args: argparse.Namespace) -> int:
    """Synthesise, validate, deploy or destroy the CloudFormation stacks."""
    from cloudformation.__main__ import main as stack_main

    return stack_main(args.stack_args)


def cmd_aws_ui(args: argparse.Namespace) -> int:
    """Open a deployment's Dagster UI on localhost through SSM port forwarding."""
    import boto3

    from cloudformation.naming import Naming
    from platform_tools.aws_ui import UiUnavailable, open_ui

    naming = Naming(args.env, args.region)
    try:
        return open_ui(boto3.Session(region_name=naming.region), naming, local_port=args.port)
    except UiUnavailable as error:
        _fail(args, error)


def cmd_materialize(args: argparse.Namespace) -> int:
    """Run the batch ETL job (export, lake, crawl, warehouse, dbt) and print what it did.

    One line per step as it starts and ends, a progress display on a terminal, then
    the run's summary; Dagster's event log and dbt's output go to the run's log file
    (see `run_progress`).
    """
    from botocore.exceptions import BotoCoreError

    from pipeline_platform.environment import SettingMissing
    from pipeline_platform.progress import watching
    from platform_tools.batch_runs import (
        InvalidWindow,
        RunFailed,
        RunInterrupted,
        describe,
        materialize,
    )
    from platform_tools.run_progress import RunDisplay

    if args.to and not args.partition:
        _usage_error("--to needs --partition (the first window of the range)")
    if args.rebuild and args.partition:
        _usage_error("--rebuild starts from a full export of the table: give no window")
    display = RunDisplay(sys.stdout, verbose=args.verbose)
    try:
        with display, watching(display.progress):
            summary = materialize(
                partition=args.partition, last=args.to, rebuild=args.rebuild, watcher=display
            )
    except InvalidWindow as error:
        _usage_error(f"materialize: {error}")
    except RunInterrupted:
        print("pipeline-platform materialize: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except RunFailed as error:
        # The failed step's line (above) holds its error; the log holds everything.
        cause = f"{', '.join(display.failed)} (its error is above)" if display.failed else error
        _fail(args, f"the run failed in {cause}; the full log is {display.log_file}")
    except (SettingMissing, BotoCoreError) as error:
        # Before the run: the deployment cannot be reached or is not deployed.
        _fail(args, error)
    print(describe(summary))
    print(f"  log: {display.log_file}")
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Where the platform stands: exit status 0 when nothing needs attention, else 1."""
    from botocore.exceptions import BotoCoreError, ClientError

    from pipeline_platform.environment import SettingMissing, get_environment
    from platform_tools.status import gather, render

    try:
        report = gather(get_environment(), max_lag=args.max_lag)
    except (SettingMissing, BotoCoreError, ClientError) as error:
        _fail(args, error)
    print(json.dumps(report.as_dict(), indent=2) if args.json else render(report))
    return 1 if report.attention else 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The whole platform end to end on the embedded local cloud."""
    from platform_tools.demo import run_demo

    return run_demo(devices=args.devices, readings=args.readings, state_dir=args.state_dir)


def cmd_ui(args: argparse.Namespace) -> int:
    """The local cloud, a publishing fleet and the Dagster UI, until Ctrl-C or SIGTERM."""
    from local_cloud.ports import PortInUse
    from platform_tools.dagster_ui import UiError, run_ui

    try:
        return run_ui(
            port=args.port,
            aws_port=args.aws_port,
            mqtt_port=args.mqtt_port,
            state_dir=args.state_dir,
            devices=args.devices,
            rate=args.rate,
        )
    except PortInUse as error:
        # As `up` does: a taken port exits 2, before anything started.
        print(f"pipeline-platform ui: {error}", file=sys.stderr)
        return 2
    except UiError as error:
        _fail(args, error)


# --- parser ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every sub-command."""
    parser = argparse.ArgumentParser(
        prog="pipeline-platform",
        description="IoT data platform: local cloud, devices, real-time queries, stacks, runs.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def aws_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--endpoint-url",
            help=f"AWS endpoint (default: $AWS_ENDPOINT_URL or {ENDPOINT_URL}, the local cloud)",
        )
        p.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", REGION))

    def mqtt_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default=HOST, help="MQTT broker host")
        p.add_argument("--port", type=port_number, default=MQTT_PORT, help="MQTT broker port")

    def local_cloud_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--aws-port", type=port_number, default=AWS_PORT, help="AWS emulator port")
        p.add_argument("--mqtt-port", type=port_number, default=MQTT_PORT, help="MQTT broker port")
        p.add_argument(
            "--state-dir",
            default=str(STATE_DIR),
            help="folder for checkpoints and the DuckDB warehouse",
        )

    up = sub.add_parser("up", help="run the embedded local cloud until interrupted")
    local_cloud_options(up)
    up.add_argument(
        "--fresh",
        action="store_true",
        help="start empty: discard the state the local cloud kept when it last stopped",
    )
    up.set_defaults(func=cmd_up)

    pub = sub.add_parser("publish", help="publish one payload (like `aws iot-data publish`)")
    pub.add_argument("--topic", default=TOPIC)
    source = pub.add_mutually_exclusive_group(required=True)
    source.add_argument("--payload", help="the payload text, usually JSON")
    source.add_argument("--file", help="read the payload bytes from a file")
    pub.add_argument("--qos", type=int, choices=(0, 1), default=1)
    pub.add_argument(
        "--via-iot-data",
        action="store_true",
        help="publish through the IoT Data API instead of MQTT",
    )
    mqtt_options(pub)
    aws_options(pub)
    pub.set_defaults(func=cmd_publish)

    sim = sub.add_parser("simulate", help="run a simulated device fleet over MQTT")
    sim.add_argument("--devices", type=int, default=10)
    sim.add_argument("--rate", type=float, default=100, help="readings per second, whole fleet")
    sim.add_argument("--duration", type=float, default=10, help="seconds")
    sim.add_argument("--malformed-share", type=float, default=0.02)
    sim.add_argument("--seed", type=int, default=None)
    mqtt_options(sim)
    sim.set_defaults(func=cmd_simulate)

    query = sub.add_parser("query", help="real-time queries on the readings table")
    query.add_argument("what", choices=("latest", "device", "alerts"))
    query.add_argument("device_id", nargs="?", help="the device, for `query device`")
    query.add_argument("--since", type=parse_since, help="30m, 24h, 7d, ISO time or epoch")
    query.add_argument("--limit", type=int, default=100)
    query.add_argument("--table", help="table name (default: from the naming convention)")
    query.add_argument("--env", default="dev")
    aws_options(query)
    query.set_defaults(func=cmd_query)

    alerts = sub.add_parser("alerts", help="alert notifications: `alerts tail` prints them")
    alerts.add_argument("what", choices=("tail",))
    alerts.add_argument("--json", action="store_true", help="print each message's JSON body")
    alerts.add_argument("--count", type=int, help="stop after this many notifications")
    alerts.add_argument("--seconds", type=float, help="stop after this many seconds")
    alerts.add_argument("--env", default="dev")
    aws_options(alerts)
    alerts.set_defaults(func=cmd_alerts)

    stack = sub.add_parser(
        "stack", help="synth | validate | deploy | destroy the stacks", add_help=False
    )
    stack.add_argument("stack_args", nargs=argparse.REMAINDER)
    stack.set_defaults(func=cmd_stack)

    aws_ui = sub.add_parser(
        "aws-ui",
        help="open a deployment's Dagster UI on localhost (SSM port forwarding into its task)",
    )
    aws_ui.add_argument("--env", default="dev", help="the deployment's environment")
    aws_ui.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", REGION))
    aws_ui.add_argument("--port", type=port_number, default=3000, help="local port of the UI")
    aws_ui.set_defaults(func=cmd_aws_ui)

    mat = sub.add_parser(
        "materialize",
        help="run the batch ETL job: with no window, catch up from where the lake stopped to now",
    )
    mat.add_argument(
        "--partition",
        help="one write window, YYYY-MM-DD-HH:00 (UTC), run again (the first, with --to)",
    )
    mat.add_argument("--to", help="the last write window of a range starting at --partition")
    mat.add_argument(
        "--rebuild",
        action="store_true",
        help="start from one full export of the table (merged into the lake; history stays)",
    )
    mat.add_argument("--json", action="store_true", help="also print the run's whole summary")
    mat.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="also show Dagster's event log and dbt's output (always in the run's log file)",
    )
    mat.set_defaults(func=cmd_materialize)

    status = sub.add_parser(
        "status",
        help="where things stand: stream lag, the table, the lake, the last run, the warehouse, "
        "alarms (exit status 1 when something needs attention)",
    )
    status.add_argument(
        "--max-lag",
        type=duration_seconds,
        help="iterator age that needs attention, e.g. 90s or 5m (default: the threshold of the "
        "stack's IteratorAge alarm)",
    )
    status.add_argument("--json", action="store_true", help="the report as JSON, for scripts")
    status.set_defaults(func=cmd_status)

    demo = sub.add_parser("demo", help="the whole platform end to end on the local cloud")
    demo.add_argument("--devices", type=int, default=25)
    demo.add_argument("--readings", type=int, default=3000)
    demo.add_argument(
        "--state-dir", help=f"folder of the demo's own state (default: demo/ in {STATE_DIR})"
    )
    demo.set_defaults(func=cmd_demo)

    ui = sub.add_parser("ui", help="the local cloud, a publishing fleet and the Dagster UI")
    ui.add_argument("--port", type=port_number, default=3000, help="Dagster UI port")
    local_cloud_options(ui)
    ui.add_argument("--devices", type=int, default=20)
    ui.add_argument("--rate", type=float, default=20, help="readings per second, whole fleet")
    ui.set_defaults(func=cmd_ui)
    return parser


#: The exit status after the reader of standard output went away: 128 + SIGPIPE.
BROKEN_PIPE_EXIT = 128 + 13


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "query" and args.what == "device" and not args.device_id:
        parser.error("query device needs a DEVICE_ID")
    _use_local_credentials_on_loopback(args)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        # The short commands (publish, query, materialize) have nothing to stop: Ctrl-C
        # ends them with the shell's status for it, without a traceback.
        print(f"pipeline-platform {args.command}: interrupted", file=sys.stderr)
        return INTERRUPTED_EXIT
    except BrokenPipeError:
        # The reader went away (`status | head`). Standard output is pointed at /dev/null so
        # the interpreter's last flush fails no more, and the status is the one a shell
        # gives a program that SIGPIPE ended, as `cat` or `grep` would end: no traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE_EXIT
    finally:
        # A command that ran the batch side holds Dagster's and dbt's objects; the
        # interpreter's last garbage collection over them took about 1 s of every exit
        # (measured on 2 cores). The command has closed what it opened by now; exempting
        # what is left from that collection ends the process at once.
        gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
