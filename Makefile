# Deepfake Lens: `make run` serves the dashboard, `make test` runs the suite. Both set everything up.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
SHARED_DATA := $(abspath ../shared/data/faces128)
PORT ?= 8501

ifneq ($(wildcard $(SHARED_DATA)/.),)
export DEEPFAKE_DATA ?= $(SHARED_DATA)
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: run test lint venv dev-venv debian-deps bench eval clean screenshots

run: $(VENV)/.runtime
	$(VENV)/bin/streamlit run streamlit_app.py --server.headless true --server.port $(PORT) --browser.gatherUsageStats false

test: $(VENV)/.dev debian-deps
	$(PY) -m pytest

# docs/screenshot_*.png from the browser tests: built-in samples only (the demo pair, the astronaut), never the dataset.
screenshots: $(VENV)/.dev debian-deps
	env -u DEEPFAKE_DATA DEEPFAKE_SCREENSHOT_DIR=docs $(PY) -m pytest -q tests/test_browser.py -k "first_time or group or models_page or video_page_scores"

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .

venv: $(VENV)/.runtime

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

# Debian's chromium for the real-browser smoke test (Playwright cannot download browsers here).
debian-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

bench: $(VENV)/.dev
	$(PY) bench/bench_predict.py
	$(PY) bench/bench_cost.py
	$(PY) bench/bench_robustness.py
	$(PY) bench/bench_explain.py
	$(PY) bench/bench_batch.py
	@echo "bench/bench_regions.py (about 8 minutes) runs separately: $(PY) bench/bench_regions.py"

# Calibrate every installed model on val (Platt), then cache its per-image scores on val and test for the
# Models page (assets/models/<name>.eval*.csv) and re-measure the metrics in its JSON. About 5 minutes. Then cache
# region Shapley values of the default models on val and test for Error analysis (<name>.shapley-<split>.csv):
# about 0.3 s per image on a CPU, resumed where a cache newer than its model file stops.
eval: $(VENV)/.runtime
	@test -n "$(DEEPFAKE_DATA)" || { echo "set DEEPFAKE_DATA to the dataset root"; exit 2; }
	$(PY) -m models.calibration --all --data $(DEEPFAKE_DATA)
	$(PY) -m models.evaluate --all --data $(DEEPFAKE_DATA) --split val --save
	$(PY) -m models.evaluate --all --data $(DEEPFAKE_DATA) --split test --save
	for m in $$($(PY) -c "from models import list_models; print(' '.join(list_models()))"); do \
		$(PY) tools/ship_model.py - $$m --data $(DEEPFAKE_DATA) --metrics-only || exit 1; done
	$(PY) -m explain.shapley_cache --models detector_v1,detector_v2 --data $(DEEPFAKE_DATA) --split val,test

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
