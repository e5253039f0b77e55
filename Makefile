# Two commands on a fresh machine: `make demo` (the main job on bundled data) and `make test`.
# Each creates .venv and installs everything it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# MediaPipe 0.10.21 (its metadata writer, and the Tasks client the tests run) pins numpy<2 and
# protobuf<5, which TensorFlow 2.21 cannot share: it gets a venv of its own (backdrop/ship/metadata.py).
MEDIAPIPE_VENV := .venv-mediapipe
MEDIAPIPE_STAMP := $(MEDIAPIPE_VENV)/.installed
DOCS_STAMP := $(VENV)/.docs-installed

.PHONY: demo test lint docs mobile beat clean mediapipe

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[tf,jax,runtime,dev]"
	touch $(STAMP)

# Where mediapipe cannot be installed, exports warn and the MediaPipe tests skip with the reason.
$(MEDIAPIPE_STAMP):
	$(PYTHON) -m venv $(MEDIAPIPE_VENV)
	if $(MEDIAPIPE_VENV)/bin/python -m pip install --quiet "mediapipe==0.10.21"; then \
		touch $(MEDIAPIPE_STAMP); \
	else \
		rm -rf $(MEDIAPIPE_VENV); echo "mediapipe 0.10.21 could not be installed: no TFLite metadata"; \
	fi

mediapipe: $(MEDIAPIPE_STAMP)

demo: $(STAMP) $(MEDIAPIPE_STAMP)
	$(BIN)/backdrop demo --output demo_output

# The test files run in one worker process per CPU, at most 4 (pytest-xdist; a file's tests stay
# in one worker, so its module fixtures are built once; each worker holds its own TensorFlow).
# TEST_WORKERS=0 runs them all in this process.
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); echo $$(( n < 4 ? n : 4 )))
test: $(STAMP) $(MEDIAPIPE_STAMP)
	$(BIN)/python -m pytest -q --durations=10 -n $(TEST_WORKERS) --dist loadfile

# Issue 6: train the mobile segmenter on ../shared/datasets and compare it with MediaPipe (about 50 min).
mobile: $(STAMP) $(MEDIAPIPE_STAMP)
	bash recipes/mobile_vs_mediapipe.sh

# Issue 14: MediaPipe's general (square) and Meet's (landscape) segmenters distilled from
# MediaPipe + RVM on ../shared/datasets, averaged with their own weights, evaluated beside
# MediaPipe and Meet (85 min on 2 cores from a fresh clone with nothing beside it; 97-122 min
# with other work beside it).
beat: $(STAMP) $(MEDIAPIPE_STAMP)
	bash recipes/beat_mediapipe.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests python benchmarks
	$(BIN)/ruff format --check src tests python benchmarks

# The documentation site from docs/ and mkdocs.yml into site/; --strict: any warning (a broken link,
# a missing heading, a docstring the API pages cannot parse) fails the build. The docs extra needs
# no TensorFlow: the API pages read the source, they do not import it.
$(DOCS_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

# NO_MKDOCS_2_WARNING: Material for MkDocs prints a notice of its end of life on every build (a
# print, not a build warning); the notice is about the theme, not these pages.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

clean:
	rm -rf $(VENV) $(MEDIAPIPE_VENV) demo_output runs .pytest_cache site
