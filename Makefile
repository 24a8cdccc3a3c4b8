# Two commands matter: `make run` and `make test`. Everything else is a step they use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BUF    := tools/node_modules/.bin/buf
# The protos as last released (round one, commit 74c8679), as a buf image: CI's fresh clone may hold no
# history to compare against, so the baseline travels with the code. `make proto-baseline` after a release.
PROTO_BASELINE := protos-baseline/mediadl-74c8679.binpb

.PHONY: run test test-slow os-tools proto-baseline install install-dev env migrate vendor-js protos check-protos lint-proto lint typecheck pytest bench clean

$(VENV)/.run-stamp: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.dev-stamp: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(VENV)/.run-stamp $@

install: $(VENV)/.run-stamp
install-dev: $(VENV)/.dev-stamp

.env:
	$(PYTHON) scripts/write_dev_env.py .env

env: .env

migrate: install .env
	$(PY) -m auth_server migrate
	$(PY) -m download_server migrate

## run: install, write a dev .env if missing (or add AUTH_SERVICE_TOKEN to it), migrate, then serve auth (:50051) and download (:50052)
# (with CPython's own allocator, pymalloc: no PYTHONMALLOC is set here, one from your shell passes through; README)
run: migrate
	$(PYTHON) scripts/write_dev_env.py .env
	$(PY) scripts/devrun.py

$(BUF): tools/package.json tools/package-lock.json
	# npm ci would demand lock entries for every platform, which this registry does not list; the
	# exact pin in package.json plus the lock's integrity hashes give the same install.
	npm install --prefix tools --no-audit --no-fund --loglevel=error
	touch $@

## vendor-js: copy the pinned hls.js (tools/package.json) into the dashboard's static files (committed)
vendor-js: $(BUF)
	cp tools/node_modules/hls.js/dist/hls.light.min.mjs dashboard/static/js/vendor/hls.light.min.mjs
	cp tools/node_modules/hls.js/LICENSE dashboard/static/js/vendor/hls.js.LICENSE

## protos: regenerate the committed stubs in mediadl/
protos: install-dev
	$(PY) scripts/gen_protos.py

check-protos: install-dev
	$(PY) scripts/gen_protos.py --check

lint-proto: $(BUF)
	$(BUF) lint
	$(BUF) format --diff --exit-code
	$(BUF) breaking --against $(PROTO_BASELINE)

## proto-baseline: record the current protos as the released baseline (then rename PROTO_BASELINE to the commit)
proto-baseline: $(BUF)
	$(BUF) build -o $(PROTO_BASELINE)

## lint: ruff (with cyclomatic complexity at most 10) and the import-layer contracts of pyproject.toml
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: install-dev
	$(VENV)/bin/mypy .

pytest: install-dev
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

## test-slow: the long property runs (marker `slow`: 500 generated playlists); .ci/run runs it after `make test`
test-slow: install-dev
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

## os-tools: ffmpeg, chromium and jq for the tests (installed when missing and root; else says what to install)
os-tools:
	bash scripts/os_tools.sh

## test: everything CI checks
test: os-tools install-dev lint-proto check-protos lint typecheck pytest

## bench: every benchmark in bench/ (20-30 minutes on 2 cores, estimated from its parts;
## BENCH_ARGS="--only hls ranged" runs some):
## prints a table and updates docs/benchmarks.md.
## yt-dlp's figures need `$(PY) -m pip install yt-dlp` first (not a project dependency); nginx, curl and aria2c
## are installed from Debian by the HLS bench when missing and run as root (else it falls back or skips, and says so).
bench: install-dev
	$(PY) -m bench.run_all --write docs/benchmarks.md $(BENCH_ARGS)

clean:
	rm -rf $(VENV) tools/node_modules .pytest_cache .mypy_cache .ruff_cache
