"""The ``autopilot-emulator`` command (also ``python -m airflow_autopilot.emulator``): a standalone server."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from types import FrameType

from airflow_autopilot.emulator.handle import DEFAULT_REGION
from airflow_autopilot.emulator.server import LOOPBACK, EmulatorServer, airflow_conn_value

DEFAULT_PORT = 5000


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="autopilot-emulator",
        description="Local Amazon SageMaker Autopilot emulator (moto server with AutoML V1).",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("AUTOPILOT_EMULATOR_PORT", DEFAULT_PORT)),
        help="TCP port (0 picks a free one; default %(default)s or $AUTOPILOT_EMULATOR_PORT)",
    )
    parser.add_argument("--host", default=LOOPBACK, help="interface to bind (default %(default)s)")
    parser.add_argument("--stage-seconds", type=float, default=None, help="seconds per job stage")
    parser.add_argument("--max-candidates", type=int, default=None, help="cap on candidates per job")
    parser.add_argument("--region", default=DEFAULT_REGION, help="region for the printed connection")
    parser.add_argument(
        "--enforce-iam",
        action="store_true",
        help="check every request's signature and IAM policies (moto's access control); prints an "
        "admin user's keys for setting up users with the policies to test (docs/security.md)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Start the server, print how to reach it and block until SIGINT/SIGTERM.

    :param argv: arguments, default ``sys.argv[1:]``.
    """
    args = build_parser().parse_args(argv)
    server = EmulatorServer(
        port=args.port,
        host=args.host,
        stage_seconds=args.stage_seconds,
        max_candidates=args.max_candidates,
        region=args.region,
    )
    server.start()
    keys = None
    if args.enforce_iam:
        from airflow_autopilot.emulator.iam import EnforcedIam

        keys = EnforcedIam(server).start().admin_keys
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"Autopilot emulator listening on {server.endpoint_url}", flush=True)
    print(f"AWS_ENDPOINT_URL={server.endpoint_url}", flush=True)
    if keys is None:
        print(f"AIRFLOW_CONN_AWS_DEFAULT={shlex.quote(server.airflow_conn_value)}", flush=True)
    else:
        print("IAM is enforced: every request needs an IAM user's keys. The admin user's:", flush=True)
        print(f"AWS_ACCESS_KEY_ID={keys[0]}", flush=True)
        print(f"AWS_SECRET_ACCESS_KEY={keys[1]}", flush=True)
        conn = airflow_conn_value(server.endpoint_url, server.region, keys)
        print(f"AIRFLOW_CONN_AWS_DEFAULT={shlex.quote(conn)}", flush=True)
    print(f"Request counts: {server.endpoint_url}/moto-api/autopilot-emulator/request-counts", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
