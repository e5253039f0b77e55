"""`backdrop serve`: the exported model live in a browser, on the webcam or a video file."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from pathlib import Path


def _serve_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="a local web page running the model on your webcam or a video (MediaPipe Tasks)",
        description="Build a page that runs MODEL (and a second model beside it, e.g. "
        "MediaPipe's selfie segmenter) in the browser with MediaPipe Tasks for Web, whose files "
        "are fetched from npm once and served with the page, and serve it on localhost: blur, "
        "replace or show the mask, with frames per second and model milliseconds on screen. "
        "The server answers the page's own files and nothing else.",
    )
    parser.add_argument("models", nargs="+", metavar="MODEL", help="one or two .tflite models")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: localhost only; any other publishes the page and "
        "the models to the network)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument(
        "--folder",
        help="also write the page here, to publish it elsewhere (an output folder: it gets a "
        "manifest, and files Backdrop did not write are never replaced)",
    )
    parser.set_defaults(handler=_run_serve)


@contextlib.contextmanager
def _sigterm_stops():
    """SIGTERM stops the command as Ctrl-C does (KeyboardInterrupt in the main thread), so every
    `finally` runs: the server closes and the output folder's lock is released."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers belong to the main thread
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one does not cut the clean-up
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_serve(args: argparse.Namespace) -> None:
    from backdrop.web import ServeError, build_site, exposure_warning, make_server, site_url

    if len(args.models) > 2:
        raise ServeError("give one model, or two to compare side by side")
    with _sigterm_stops():
        models = [Path(model) for model in args.models]
        site = build_site(models, Path(args.folder) if args.folder else None)
        server = make_server(site, args.host, args.port)
        try:
            warning = exposure_warning(args.host, models)
            if warning:
                print(warning, file=sys.stderr, flush=True)
            written = f" (written to {site.folder})" if site.folder else ""
            shown = " and ".join(str(model) for model in models)
            print(f"serving {shown}{written} on {site_url(server)} (Ctrl-C stops)", flush=True)
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                print("stopped", flush=True)
        finally:
            server.server_close()
