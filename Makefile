# Custody — two commands for a newcomer on a fresh Debian/Ubuntu machine:
#   make run    install missing system packages, build, start Custody on ./custody-data
#   make test   install missing system packages, build, run every test
SHELL := /bin/bash
SWIFT ?= swift
DATA_DIR ?= ./custody-data
# Debian packages the build needs (headers and pkg-config files for the C libraries), and what
# the tests use: prometheus for promtool (the /metrics test checks the exposition with it);
# nats.c (libnats-dev) and nats-server for cluster mode's JetStream log and its tests;
# postgresql for the tests of the projections' PostgreSQL schema (each starts a throwaway cluster).
APT_PACKAGES := liblz4-dev libsqlite3-dev zlib1g-dev pkg-config python3-venv prometheus libnats-dev nats-server postgresql
CUSTODY := .build/release/custody


.PHONY: cluster-demo
.PHONY: run demo test deps build release bench bench-compare bench-replay benchmarks schemathesis fuzz format lint clean dashboard-screenshots

deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    echo "installing:$$missing"; sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "Custody needs these Debian packages; run:"; echo "  sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product custody

# Starts the server on the default data directory (created if missing); Ctrl-C stops it
# gracefully. The dashboard URL is printed on start.
run: release
	$(CUSTODY) serve --data-dir $(DATA_DIR)

# A server and five simulated factories (agent-, data-, services-, ui-, ops-factory) generating
# traffic, on ./custody-data; prints the dashboard URL. Ctrl-C stops it.
demo: release
	$(CUSTODY) demo --data-dir $(DATA_DIR)

# Cluster mode on one machine: three nats-server processes (JetStream, R3) and two Custody
# nodes (http://127.0.0.1:8787/ and :8797/) on loopback, under ./custody-cluster. Ctrl-C stops it.
cluster-demo: release
	scripts/cluster-demo.sh

# docs/benchmarks.md P6: builds a 10,000,000-event data dir once (kept in $(DATA_DIR)-p6), then measures
# trace fetch and replay of a 1,000-span trace in it.
bench-replay: release
	$(CUSTODY) bench replay --data-dir $(DATA_DIR)-p6

# Custody beside what a user would pick instead, in one run (a few minutes): appends against the
# seed design's one SQLite INSERT per event and a NATS JetStream stream, projections against
# PostgreSQL COPY; prints each ratio and draws docs/plots/bench-compare.png (docs/benchmarks.md).
bench-compare: release
	scripts/bench-compare.sh

# An in-process ingest of a million span events with the projections following, a timed start-up
# of that directory, and a look at what was written (no server needed).
bench: release
	$(CUSTODY) bench ingest --in-process --data-dir $(DATA_DIR)-bench --events 1000000 --project
	$(CUSTODY) bench startup --data-dir $(DATA_DIR)-bench
	$(CUSTODY) log inspect --data-dir $(DATA_DIR)-bench
	$(CUSTODY) log verify --data-dir $(DATA_DIR)-bench

test: deps
	$(SWIFT) format lint --strict --recursive Sources Tests Benchmarks Package.swift
	$(SWIFT) build --build-tests
	# Two runs: the log's and the core's CPU-heavy suites (crash simulation, millions of records)
	# would otherwise share the test process's two threads with the servers of the timing-bound
	# server tests (slow-client deadlines, worker timeouts).
	$(SWIFT) test --skip-build --parallel --num-workers 2 --filter 'CustodyLogTests|CustodyCoreTests|CustodyOTLPTests|CustodyJetStreamTests'
	$(SWIFT) test --skip-build --parallel --num-workers 2 --filter 'CustodyServerTests|CustodyClientTests|CustodyCommandTests' --skip 'Cluster'
	# The cluster suites one at a time: each runs three nats-servers and two or more Custody nodes
	# (and PostgreSQL), which together would starve one another on two cores.
	$(SWIFT) test --skip-build --no-parallel --filter 'Cluster'
	Tests/interop/otlp-python.sh
	Tests/interop/rpc-python.sh
	Tests/interop/verify-log-python.sh
	Tests/dashboard/dashboard-e2e.sh

# Benchmarks (ordo-one/benchmark), built in release by the plugin.
benchmarks: deps
	$(SWIFT) package --allow-writing-to-package-directory benchmark --no-progress

# The dashboard's browser test, copying its screenshots into docs/screenshots (the README shows them).
dashboard-screenshots: deps
	$(SWIFT) build
	Tests/dashboard/dashboard-e2e.sh --docs

# schemathesis against schema/openapi.yaml and a fresh server (installs it from PyPI into .build/).
schemathesis: deps
	scripts/schemathesis.sh

# libFuzzer on the span parser, the event codec and the OTLP decoder (against SwiftProtobuf), FUZZ_SECONDS (default 600) each; FUZZ_ONLY=span|event|otlp runs one.
fuzz: deps
	scripts/fuzz.sh

format:
	$(SWIFT) format --in-place --recursive Sources Tests Benchmarks Package.swift

lint:
	$(SWIFT) format lint --strict --recursive Sources Tests Benchmarks Package.swift

clean:
	rm -rf .build
