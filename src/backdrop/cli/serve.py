"""`backdrop serve`: the exported model live in a browser, on the webcam or a video file."""

from __future__ import annotations

import argparse
from pathlib import Path


def _serve_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="a local web page running the model on your webcam or a video (MediaPipe Tasks)",
        description="Build a static page that runs MODEL (and a second model beside it, e.g. "
        "MediaPipe's selfie segmenter) in the browser with MediaPipe Tasks for Web, whose files "
        "are fetched from npm once and served with the page, and serve it on localhost: blur, "
        "replace or show the mask, with frames per second and model milliseconds on screen.",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="one or two .tflite models")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: localhost only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--folder", help="write the static page here (default: a temporary folder)")
    parser.set_defaults(handler=_run_serve)


def _run_serve(args: argparse.Namespace) -> None:
    import tempfile

    from backdrop.web import ServeError, build_site, make_server

    if len(args.models) > 2:
        raise ServeError("give one model, or two to compare side by side")
    with tempfile.TemporaryDirectory() as scratch:
        folder = build_site([Path(m) for m in args.models], Path(args.folder or scratch))
        server = make_server(folder, args.host, args.port)
        host, port = server.server_address[:2]
        print(
            f"serving {folder} on http://{'localhost' if host == '127.0.0.1' else host}:{port}/ (Ctrl-C stops)"
        )
        try:
            server.serve_forever()
        finally:
            server.server_close()
