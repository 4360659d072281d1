# caresync: the two set-up commands are `make sandbox` (the demo on embedded defaults) and
# `make test` (the test suite). Both first make sure the system packages are present.

SHELL := /bin/bash
SWIFT ?= swift
PYTHON ?= python3

# Debian packages the build, the tests and the benchmarks need.
APT_PACKAGES := libcurl4-openssl-dev libssl-dev libsqlite3-dev pkg-config sqlite3 wrk openssl python3 systemd nghttp2-server
# Debian packages only `make bench` needs (nginx is the HTTP benchmark's endpoint).
BENCH_APT_PACKAGES := nginx-light
# Python packages the tests use as independent checkers (JSON Schema, FHIR R4 models).
PY_PACKAGES := jsonschema fhirclient pyyaml cryptography
PY_MODULES := jsonschema fhirclient yaml cryptography

.PHONY: deps deps-apt deps-python build test sandbox bench clean install

# Where `make install` puts things (DESTDIR stages a package).
PREFIX ?= /usr/local
DESTDIR ?=

## deps: install missing system and Python packages (apt as root), or say exactly what to install.
deps: deps-apt deps-python

deps-apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "missing Debian packages:$$missing"; \
			echo "install them with: sudo apt-get install$$missing"; exit 1; \
		fi; \
	fi

deps-python:
	@if ! $(PYTHON) -c "import $(shell echo $(PY_MODULES) | tr ' ' ',')" 2>/dev/null; then \
		echo "installing Python packages: $(PY_PACKAGES)"; \
		$(PYTHON) -m pip install --quiet $(PY_PACKAGES) 2>/dev/null \
		|| $(PYTHON) -m pip install --quiet --break-system-packages $(PY_PACKAGES) \
		|| { echo "install them with: $(PYTHON) -m pip install $(PY_PACKAGES)"; exit 1; }; \
	fi

build: deps-apt
	$(SWIFT) build

## test: the whole suite (Swift Testing), serially so the runner prints its summary.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

## sandbox: hub + two providers on loopback, the daemon syncing them, a summary at the end.
sandbox: deps-apt
	$(SWIFT) build
	"$$($(SWIFT) build --show-bin-path)/caresync" sandbox

## bench: every benchmark (or AREAS="merge …") in release mode, each next to a baseline from the same run.
bench: deps
	@$(MAKE) --no-print-directory deps-apt APT_PACKAGES="$(BENCH_APT_PACKAGES)"
	$(SWIFT) build -c release
	CARESYNC_BIN_DIR="$$($(SWIFT) build -c release --show-bin-path)" Benchmarks/run $(AREAS)

## install: release build, then Deploy/install.sh (binary, systemd unit, /etc/caresync, docs); see docs/operations.md.
install: deps-apt
	$(SWIFT) build -c release --product caresync
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" Deploy/install.sh "$$($(SWIFT) build -c release --show-bin-path)/caresync"

clean:
	rm -rf .build
