# apikeys: `make test` runs every test against DynamoDB Local and lints the template.
# It installs what is missing: DynamoDB Local (npm) and the Python tools (venv), into
# APIKEYS_CACHE (default: .cache/ in the clone; CI points it outside).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export APIKEYS_CACHE ?= $(CURDIR)/.cache
VENV := $(APIKEYS_CACHE)/venv
PY_REQS := tools/requirements.txt
STAMP := $(VENV)/.installed-$(shell sha256sum $(PY_REQS) | cut -c1-12)

# SAM and cfn-lint need a region and no telemetry; no credentials are used.
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help tools test test-rust lint lint-rust lint-template fmt
.PHONY: bench bench-smoke bench-zips

help:
	@echo "make test           run all tests against DynamoDB Local, and lint the template"
	@echo "make lint           cargo fmt --check, clippy -D warnings, template lint"
	@echo "make tools          install DynamoDB Local and the Python tools"
	@echo "make bench          the benchmark (bench/README.md): release build, zips, run, results"
	@echo "make bench-smoke    a tiny run of the benchmark harness (CI), no timings judged"

$(STAMP): $(PY_REQS)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r $(PY_REQS)
	rm -f $(VENV)/.installed-* && touch $@

tools: $(STAMP)
	tools/dynamodb-local.sh install

test: tools test-rust lint-template

test-rust:
	tools/dynamodb-local.sh run cargo test --workspace --locked

lint: lint-rust lint-template

lint-rust:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

lint-template: $(STAMP)
	$(VENV)/bin/cfn-lint template.yaml
	$(VENV)/bin/sam validate --lint --template template.yaml

fmt:
	cargo fmt --all

# --- Benchmark (bench/README.md) ---------------------------------------------------------
# `make bench` builds the release binaries, the Lambda zips for both architectures, then runs
# bench/run under DynamoDB Local and writes bench/results/. `make bench-smoke` runs the same
# harness on debug binaries with tiny counts.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
BENCH_BINS := -p get-key -p list-keys -p apikeys-bench
BENCH_OUT ?= bench/results

bench: tools bench-zips
	cargo build --release --locked $(BENCH_BINS)
	timeout 900 tools/dynamodb-local.sh run $(TARGET_DIR)/release/apikeys-bench \
	  --out $(BENCH_OUT) --zips $(TARGET_DIR)/bench-zips

bench-zips: $(STAMP)
	PATH="$(VENV)/bin:$$PATH" bench/zips.sh $(TARGET_DIR)/bench-zips

bench-smoke: tools
	cargo build --locked $(BENCH_BINS)
	timeout 300 tools/dynamodb-local.sh run $(TARGET_DIR)/debug/apikeys-bench --smoke \
	  --out $(APIKEYS_CACHE)/bench-smoke
