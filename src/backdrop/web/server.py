"""The HTTP server of a `Site`: it answers GET and HEAD for the files the site built, from their
bytes in memory, and nothing else: no directory listing, no file from disk, no link followed."""

from __future__ import annotations

import http.server
import ipaddress
import socket
import socketserver
import sys
from pathlib import Path

from backdrop.web.errors import ServeError
from backdrop.web.site import Site

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".png": "image/png",
    ".jpg": "image/jpeg",
}
LONGEST_TARGET = 2048  # no built file's URL comes near; longer requests are refused, not looked up


def is_loopback(host: str) -> bool:
    """Whether listening on `host` keeps the page on this computer."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, models: list[Path]) -> str | None:
    """What to tell the user when `host` publishes the page beyond this computer, or None."""
    if is_loopback(host):
        return None
    names = ", ".join(str(model) for model in models)
    what = "the model files" if len(models) > 1 else "the model file"
    return (
        f"warning: --host {host or repr(host)} exposes the page and {what} ({names}) to other "
        "machines on the network: anyone who can reach this computer can download them; use "
        "--host 127.0.0.1 to keep them on this computer"
    )


def site_url(server: http.server.HTTPServer) -> str:
    """The address to open in a browser on this computer."""
    host, port = server.server_address[:2]
    if host in ("127.0.0.1", "0.0.0.0", "::", ""):
        host = "localhost"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    server_version = "Backdrop"
    sys_version = ""
    timeout = 60  # a silent client does not hold a thread for ever
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        target = self.path.partition("?")[0]
        if len(target) > LONGEST_TARGET or not target.startswith("/"):
            self.send_error(400)
            return
        # Looked up as sent: every built URL is plain ASCII, so an escaped, dotted or doubled
        # path is simply not one of them.
        data = self.server.files.get(target)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        suffix = ".html" if target.endswith("/") else Path(target).suffix  # "/" is index.html
        self.send_header("Content-Type", CONTENT_TYPES.get(suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, *args) -> None:  # quiet: the page shows what matters
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    files: dict[str, bytes]

    def server_bind(self) -> None:
        # HTTPServer's own looks this computer's name up (getfqdn), which can hang offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return  # the browser went away mid-answer
        print(
            f"backdrop serve: could not answer {client_address[0]}: "
            f"{type(error).__name__}: {error}",
            file=sys.stderr,
        )


class _Server6(_Server):
    address_family = socket.AF_INET6


def make_server(site: Site, host: str = "127.0.0.1", port: int = 8000) -> _Server:
    """An HTTP server of `site` (port 0: any free port); `server.server_address` says where."""
    kind = _Server6 if ":" in host else _Server
    try:
        server = kind((host.strip("[]"), port), _Handler)
    except OSError as error:
        raise ServeError(
            f"cannot listen on {host}:{port} ({error}); choose another --port or --host"
        ) from None
    server.files = dict(site.files)
    return server
