"""The server of `backdrop serve` answers the files the page built, from their bytes, and nothing
else: no file planted beside them, no link, no directory listing, no traceback on odd requests."""

from __future__ import annotations

import os

import pytest

from backdrop.web import build_site, exposure_warning, is_loopback, make_server, site_url
from tests.web.helpers import request, serving


@pytest.fixture
def published(tmp_path, vendor_cache, model):
    """A page written to a --folder, with a secret and links to one planted around it."""
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:secret\n")
    (tmp_path / "site-parent").mkdir()
    folder = tmp_path / "site-parent" / "site"
    site = build_site([model], folder)
    (tmp_path / "site-parent" / "secret.txt").write_text("secret beside the folder")
    (folder / "secret.txt").write_text("secret inside the folder")
    (folder / "passwd").symlink_to(secret)
    (folder / "etc").symlink_to(secret.parent)
    (folder / "models" / "passwd").symlink_to(secret)
    return site, secret


def test_every_built_file_is_served_with_its_bytes(published):
    site, _ = published
    assert {"/", "/index.html", "/app.js", "/models.json", "/models/0-person.tflite"} <= set(
        site.files
    )
    assert "/tasks-vision/wasm/vision_wasm_internal.wasm" in site.files
    with serving(site) as port:
        for path, data in site.files.items():
            status, headers, body = request(port, path)
            assert (status, body) == (200, data), path
            assert headers["Content-Length"] == str(len(data))
            assert headers["X-Content-Type-Options"] == "nosniff"
        status, headers, body = request(port, "/app.js", method="HEAD")
        assert (status, body) == (200, b"")
        assert headers["Content-Type"].startswith("text/javascript")
        assert headers["Content-Length"] == str(len(site.files["/app.js"]))
        assert request(port, "/tasks-vision/wasm/vision_wasm_internal.wasm")[1]["Content-Type"] == (
            "application/wasm"
        )
        assert request(port, "/index.html?cache=1")[0] == 200
        for page in ("/", "/index.html"):  # as a page: with nosniff, anything else is a download
            assert request(port, page)[1]["Content-Type"].startswith("text/html"), page


def test_planted_files_and_links_are_not_served(published):
    site, secret = published
    planted = [
        "/secret.txt",
        "/passwd",
        "/etc/passwd",
        "/models/passwd",
        "/../secret.txt",
        "/models/../secret.txt",
        "/.backdrop-manifest.json",
        "/../etc/passwd",
        "/%2e%2e/secret.txt",
    ]
    with serving(site) as port:
        for path in planted:
            status, _, body = request(port, path)
            assert status == 404, path
            assert b"secret" not in body and b"root:" not in body, path


def test_a_built_file_replaced_by_a_link_on_disk_still_serves_what_was_built(published):
    site, secret = published
    on_disk = site.folder / "models.json"
    on_disk.unlink()
    on_disk.symlink_to(secret)
    with serving(site) as port:
        status, _, body = request(port, "/models.json")
    assert (status, body) == (200, site.files["/models.json"])


@pytest.mark.parametrize(
    "path", ["/models/", "/models", "/tasks-vision/", "/tasks-vision/wasm/", "/models//", "/./"]
)
def test_no_directory_listing(published, path):
    site, _ = published
    with serving(site) as port:
        status, _, body = request(port, path)
    assert status == 404
    assert b"0-person.tflite" not in body and b"vision_bundle" not in body


ODD_TARGETS = [
    "/%00",
    "/index.html%00",
    b"/\x00",
    "/" + "a" * 5000,
    "/" + "%2F" * 3000,
    "/..",
    "/../../../../etc/passwd",
    "/models%2F0-person.tflite",
    "/%2Fetc%2Fpasswd",
    "/%ff%fe",
    "/%c0%ae%c0%ae/secret.txt",
    "/%",
    "//etc/passwd",
    "\\..\\secret.txt",
    "http://example.com/index.html",
    "*",
    b"/\xff\xfe",
]


def test_odd_requests_get_400_or_404_and_the_server_keeps_answering(published, capfd):
    site, _ = published
    with serving(site) as port:
        for target in ODD_TARGETS:
            status, _, body = request(port, target)
            assert status in (400, 404), target
            assert b"secret" not in body
            assert request(port, "/")[0] == 200, f"no answer after {target!r}"
        for method in ("POST", "PUT", "DELETE", "OPTIONS", "PROPFIND"):
            assert request(port, "/index.html", method=method)[0] == 501, method
        assert request(port, "/", method="GET / HTTP/1.0\r\nX:")[0] == 200
    console = capfd.readouterr()
    assert "Traceback" not in console.err + console.out


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "LOCALHOST", "::1", "[::1]", "127.0.0.2"]
)
def test_loopback_hosts_are_not_warned_about(host, model):
    assert is_loopback(host)
    assert exposure_warning(host, [model]) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::", "192.168.1.20", "example.com"])
def test_other_hosts_warn_that_the_page_and_the_model_reach_the_network(host, model):
    assert not is_loopback(host)
    warning = exposure_warning(host, [model])
    assert "\n" not in warning
    assert "other machines on the network" in warning and str(model) in warning
    assert "--host 127.0.0.1" in warning


def test_listening_on_every_interface_shows_a_local_address(tmp_path, vendor_cache, model):
    server = make_server(build_site([model]), "0.0.0.0", 0)
    try:
        assert site_url(server) == f"http://localhost:{server.server_address[1]}/"
    finally:
        server.server_close()


def test_a_busy_port_is_one_line(vendor_cache, model):
    from backdrop.web import ServeError

    site = build_site([model])
    first = make_server(site, port=0)
    try:
        with pytest.raises(ServeError, match="choose another --port") as error:
            make_server(site, port=first.server_address[1])
        assert "\n" not in str(error.value)
    finally:
        first.server_close()


def test_the_page_in_memory_needs_no_folder(vendor_cache, model, tmp_path):
    before = set(os.listdir(tmp_path))
    site = build_site([model])
    assert site.folder is None and site.files["/models/0-person.tflite"] == model.read_bytes()
    assert set(os.listdir(tmp_path)) == before
