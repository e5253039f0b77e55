"""`backdrop serve`: a real headless Chromium, its camera faked with a video file, runs the quick
demo's model on the page; the page's mask agrees with Backdrop's runtime on the same picture."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from backdrop.web import ServeError, build_site, make_server

SCREENSHOT = os.environ.get("BACKDROP_SCREENSHOT")  # where to keep the page's screenshot


def browser_or_skip():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        pytest.skip("no Chromium and chromedriver (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
    except ImportError:
        pytest.skip("selenium is not installed (the dev extra has it)")
    return chromium, driver, webdriver


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 15) -> Path:
    """Chromium's fake camera reads YUV4MPEG2 (4:2:0)."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            handle.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory) -> Path:
    from backdrop.demo import DemoSettings, run_demo
    from backdrop.ship.metadata import writer_python

    browser_or_skip()  # before the demo's training, which only the browser test needs
    if writer_python() is None:
        pytest.skip("MediaPipe's metadata writer is not installed (`make mediapipe`)")
    artefacts = run_demo(tmp_path_factory.mktemp("demo") / "out", DemoSettings.quick())
    return artefacts["model"]


@pytest.mark.slow
def test_the_page_segments_a_fake_camera_and_agrees_with_the_runtime(demo_model, tmp_path):
    chromium, driver_path, webdriver = browser_or_skip()
    try:
        site = build_site([demo_model, demo_model], tmp_path / "site")
    except ServeError as error:
        pytest.skip(str(error))
    from backdrop.data.synthetic import write_clip
    from backdrop.runtime.media import open_video, video_frames
    from backdrop.runtime.segmenter import Segmenter

    capture, *_ = open_video(write_clip(tmp_path / "clip.mp4", frames=30))
    frames = list(video_frames(capture))
    capture.release()
    camera = write_y4m(tmp_path / "camera.y4m", frames)
    # Served beside the page for this test only: the server answers nothing it was not given.
    _, png = cv2.imencode(".png", cv2.cvtColor(frames[5], cv2.COLOR_RGB2BGR))
    site.files["/frame.png"] = png.tobytes()

    server = make_server(site, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={camera}",
        "--window-size=1400,800",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(driver_path))
    try:
        browser.get(f"http://localhost:{server.server_address[1]}/")
        deadline = time.time() + 60
        stats = []
        while time.time() < deadline:
            state = browser.execute_script("return window.backdrop")
            assert state is not None and state["error"] is None, state
            stats = state["stats"]
            if stats and min(s["frames"] for s in stats) >= 20:
                break
            time.sleep(0.5)
        assert len(stats) == 2 and all(s["frames"] >= 20 for s in stats), stats
        assert all(s["fps"] > 0 and s["modelMs"] > 0 for s in stats), stats
        assert all(s["difference"] > 5 for s in stats), "the blurred view differs from the camera"
        if SCREENSHOT:
            browser.save_screenshot(SCREENSHOT)
        page = browser.execute_async_script(
            "window.backdrop.segmentImage('frame.png').then(arguments[arguments.length - 1])"
        )
    finally:
        browser.quit()
        server.shutdown()
    theirs = np.array(page["mask"], np.float32).reshape(page["height"], page["width"])
    ours = Segmenter(demo_model, threads=1)(frames[5])
    assert theirs.shape == ours.shape
    both, either = ((theirs >= 0.5) & (ours >= 0.5)).sum(), ((theirs >= 0.5) | (ours >= 0.5)).sum()
    assert either > 0 and both / either > 0.95, both / either
    assert float(np.abs(theirs - ours).mean()) < 0.03


def test_missing_npm_is_one_line_naming_what_to_install(tmp_path, monkeypatch, tiny_models):
    import backdrop.web as web
    from backdrop.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(web.vendor.shutil, "which", lambda name: None)
    with pytest.raises(ServeError, match="no TFLite metadata"):
        web.build_site([tiny_models["float32"]], tmp_path / "site")
    from backdrop.ship.metadata import describe, write_metadata, writer_python

    if writer_python() is not None:
        model = tmp_path / "with_metadata.tflite"
        shutil.copy(tiny_models["float32"], model)
        write_metadata(model, describe("float32", False, "0", "test"))
        with pytest.raises(ServeError, match="install Node.js and npm"):
            web.build_site([model], tmp_path / "site")
    assert main(["serve", str(tmp_path / "missing.tflite")]) == 1
