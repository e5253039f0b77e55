"""Helpers of the `backdrop serve` tests: a servable tiny model, a server in a thread, and a raw
HTTP client that sends a request target exactly as written."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

from backdrop.web import make_server


def servable(source: Path, path: Path) -> Path:
    """A copy of a tiny model that passes serve's checks: its metadata faked by the marker
    MediaPipe's writer leaves (LiteRT ignores bytes after the flatbuffer); no contract."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(source.read_bytes() + b"TFLITE_METADATA")
    return path


@contextlib.contextmanager
def serving(site, host: str = "127.0.0.1"):
    """Serves `site` on a free port in a thread; yields the port."""
    server = make_server(site, host, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def request(port: int, target: bytes | str, method: str = "GET") -> tuple[int, dict, bytes]:
    """Sends one HTTP/1.0 request with `target` byte for byte; returns status, headers, body."""
    if isinstance(target, str):
        target = target.encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(method.encode() + b" " + target + b" HTTP/1.0\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), headers, body
