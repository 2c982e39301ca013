"""A moto server with the Autopilot extension, bound to the loopback interface by default."""

from __future__ import annotations

import json
import uuid
from typing import Any

from airflow_autopilot.emulator import controls, settings
from airflow_autopilot.emulator.handle import DEFAULT_REGION, EmulatorHandle

LOOPBACK = "127.0.0.1"
FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"


def airflow_conn_value(
    endpoint_url: str,
    region: str = DEFAULT_REGION,
    keys: tuple[str, str] = (FAKE_ACCESS_KEY, FAKE_SECRET_KEY),
) -> str:
    """Return the JSON ``AIRFLOW_CONN_AWS_DEFAULT`` value that points Airflow's AWS hooks at ``endpoint_url``.

    :param endpoint_url: the emulator URL.
    :param region: the region the hooks use.
    :param keys: access key id and secret (an IAM user's, when IAM is enforced).
    """
    return json.dumps(
        {
            "conn_type": "aws",
            "login": keys[0],
            "password": keys[1],
            "extra": {"region_name": region, "endpoint_url": endpoint_url},
        }
    )


def _request_handler() -> type:
    """moto's request handler with one ``Date`` header per response, on the emulator clock, and an
    ``x-amzn-RequestId`` on every response.

    The standard library stamps the wall clock; a Date that ignores :meth:`EmulatorHandle.advance`
    would put the server's own time out of step with its jobs' times. SageMaker answers carry the
    Date taken before their operation ran (in-process clients get it too); other answers get one here.
    Every AWS answer names its request; SageMaker answers get their id from the front door
    (:func:`airflow_autopilot.emulator.urls.front_door`), any other answer (control routes, an error
    page) gets one here.
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    from airflow_autopilot.emulator.urls import REQUEST_ID_HEADER

    class EmulatorRequestHandler(MotoRequestHandler):
        def run_wsgi(self) -> None:
            # A reset (EmulatorHandle.reset) waits for this answer and holds the next request back
            # (only while a request runs: an idle keep-alive connection holds nothing).
            with controls.REQUEST_GATE.request():
                super().run_wsgi()

        def send_response(self, code: int, message: str | None = None) -> None:
            # As the standard library does, less its wall-clock Date (end_headers adds one if needed).
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Server", self.version_string())

        def end_headers(self) -> None:
            sent = [line.lower() for line in getattr(self, "_headers_buffer", [])]
            if not any(line.startswith(b"date:") for line in sent):
                self.send_header("Date", self.date_time_string(settings.now()))
            if not any(line.startswith(REQUEST_ID_HEADER.lower().encode() + b":") for line in sent):
                self.send_header(REQUEST_ID_HEADER, str(uuid.uuid4()))
            super().end_headers()

    return EmulatorRequestHandler


class EmulatorServer(EmulatorHandle):
    """A threaded moto server in this process with the Autopilot emulator installed.

    Use as a context manager or call :meth:`start` and :meth:`stop`. The handle methods
    (:meth:`advance`, :meth:`inject_faults`, :meth:`request_counts`...) act on the server directly
    because it shares this process's state.

    :param port: TCP port; 0 picks a free one.
    :param host: interface to bind, the loopback interface by default.
    :param stage_seconds: seconds per lifecycle stage (process-wide setting).
    :param max_candidates: cap on candidates per job (process-wide setting).
    :param region: region of the clients and of :attr:`airflow_conn_value`.
    """

    def __init__(
        self,
        port: int = 0,
        host: str = LOOPBACK,
        stage_seconds: float | None = None,
        max_candidates: int | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        super().__init__(region)
        self.host = host
        self.port = port
        self.stage_seconds = stage_seconds
        self.max_candidates = max_candidates
        self._server: Any = None

    @property
    def running(self) -> bool:
        """Whether the server is started."""
        return self._server is not None

    @property
    def endpoint_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._server is None:
            raise RuntimeError("the emulator server is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    @property
    def airflow_conn_value(self) -> str:
        """JSON connection for ``AIRFLOW_CONN_AWS_DEFAULT`` pointing at this server."""
        return airflow_conn_value(self.endpoint_url, self.region)

    def start(self) -> EmulatorServer:
        """Install the extension and start serving; return ``self``."""
        if self._server is not None:
            return self
        from moto.server import ThreadedMotoServer

        from airflow_autopilot.emulator.urls import install

        install()
        settings.configure(stage_seconds=self.stage_seconds, max_candidates=self.max_candidates)
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        # Before any request arrives: answer with the emulator clock in every Date header.
        assert server._server is not None
        server._server.RequestHandlerClass = _request_handler()
        self.port = server.get_host_and_port()[1]
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving (moto's state stays until reset)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, service: str = "sagemaker", **kwargs: Any) -> Any:
        """Return a boto3 client for ``service`` talking to this server with fake credentials.

        :param service: the boto3 service name.
        :param kwargs: more ``boto3.client`` arguments.
        """
        kwargs.setdefault("endpoint_url", self.endpoint_url)
        kwargs.setdefault("aws_access_key_id", FAKE_ACCESS_KEY)
        kwargs.setdefault("aws_secret_access_key", FAKE_SECRET_KEY)
        return super().client(service, **kwargs)

    def environment(self) -> dict[str, str]:
        """Return environment variables that point boto3 and Airflow at this server."""
        return {
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AIRFLOW_CONN_AWS_DEFAULT": self.airflow_conn_value,
        }
