"""`backdrop serve`: a local web page that runs exported models in the browser with MediaPipe Tasks
for Web, on the webcam or a video file. TensorFlow-free.

The page's files (`page/`), MediaPipe's vendored WASM (`vendor`) and the models, each checked
first (`model_file`), make a `Site` held in memory (`site`), which `--folder` also writes to an
output folder. A standard-library HTTP server (`server`) answers those files and nothing else.
"""

from backdrop.web.errors import ServeError
from backdrop.web.model_file import read_model
from backdrop.web.server import exposure_warning, is_loopback, make_server, site_url
from backdrop.web.site import PAGE, Site, build_site
from backdrop.web.vendor import (
    TASKS_VISION,
    TASKS_VISION_VERSION,
    VENDOR_FILES,
    cache_folder,
    tasks_vision,
)

__all__ = [
    "PAGE",
    "TASKS_VISION",
    "TASKS_VISION_VERSION",
    "VENDOR_FILES",
    "ServeError",
    "Site",
    "build_site",
    "cache_folder",
    "exposure_warning",
    "is_loopback",
    "make_server",
    "read_model",
    "site_url",
    "tasks_vision",
]
