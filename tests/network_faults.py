"""
Network faults on the loopback interface, for the deadline tests and the fault suites: a server that
accepts connections and never answers, a port where nothing listens, and a proxy in front of the
emulator server that can hang or refuse for a while and then heal.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class HangingServer:
    """A loopback TCP server that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.05)
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for conn in self.accepted:
            conn.close()
        self.sock.close()


def refused_url() -> str:
    """A loopback URL where nothing listens (the port was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class FaultyProxy:
    """
    A TCP proxy on 127.0.0.1 in front of ``upstream_port`` whose faults are scheduled in real time.

    ``hang(start, seconds)``: requests sent in that window get no answer (the connection stays open
    and silent, as with a server that stopped responding). ``refuse(start, seconds)``: nothing
    listens in that window and open connections are cut, so clients see resets, then refused
    connections. Times are seconds from :meth:`start_clock`.

    :param upstream_port: the emulator server's port.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._windows: list[tuple[str, float, float]] = []
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_clock(self) -> None:
        self._t0 = time.monotonic()

    def hang(self, start: float, seconds: float) -> None:
        self._windows.append(("hang", start, start + seconds))

    def refuse(self, start: float, seconds: float) -> None:
        self._windows.append(("refuse", start, start + seconds))

    def clear(self) -> None:
        self._windows.clear()

    def _active(self, kind: str) -> bool:
        now = time.monotonic() - self._t0
        return any(k == kind and a <= now < b for k, a, b in self._windows)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._active("refuse"):
                self._close_listener()
                with self._lock:
                    for conn in self._conns:
                        with contextlib.suppress(OSError):
                            conn.shutdown(socket.SHUT_RDWR)
                            conn.close()
                    self._conns.clear()
                time.sleep(0.01)
                continue
            if self._listener is None:
                listener = socket.socket()
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    listener.bind(("127.0.0.1", self.port))
                except OSError:
                    listener.close()
                    time.sleep(0.01)
                    continue
                listener.listen(64)
                listener.settimeout(0.02)
                self._listener = listener
            try:
                client, _ = self._listener.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        with self._lock:
            self._conns += [client, upstream]
        silenced = threading.Event()  # a request was swallowed: this connection never answers again

        def pump(src: socket.socket, dst: socket.socket, requests: bool) -> None:
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    if requests and (silenced.is_set() or self._active("hang")):
                        silenced.set()
                        continue
                    if not requests and silenced.is_set():
                        continue
                    dst.sendall(data)
            except OSError:
                pass
            finally:
                for sock in (src, dst):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()
        pump(client, upstream, True)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._close_listener()
        with self._lock:
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.close()


def faulty_network(upstream_port: int, windows, monkeypatch) -> FaultyProxy:
    """
    A :class:`FaultyProxy` in front of the emulator with its fault windows scheduled, reachable as
    the Airflow connection ``faulty_network`` (the caller starts its clock and closes it).

    :param upstream_port: the emulator server's port.
    :param windows: ``(kind, start, seconds)`` triples, kind ``"hang"`` or ``"refuse"``.
    :param monkeypatch: pytest's monkeypatch, which sets the connection for this test only.
    """
    from airflow_autopilot.emulator.server import airflow_conn_value

    proxy = FaultyProxy(upstream_port)
    monkeypatch.setenv("AIRFLOW_CONN_FAULTY_NETWORK", airflow_conn_value(proxy.url))
    for kind, start, seconds in windows:
        getattr(proxy, kind)(start, seconds)
    return proxy
