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
.PHONY: security security-ci fuzz-tools fuzz-build

help:
	@echo "make test           run all tests against DynamoDB Local, and lint the template"
	@echo "make lint           cargo fmt --check, clippy -D warnings, template lint"
	@echo "make tools          install DynamoDB Local and the Python tools"
	@echo "make security       long adversarial run: 10,000-request isolation test, fuzzing 10 min a target"
	@echo "make security-ci    bounded fuzzing (FUZZ_CI_SECONDS a target), as CI runs it"

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

# ---- Security: adversarial tests and fuzzing (see SECURITY.md) ---------------------------
# The bounded adversarial tests (isolation property, cursors, faults, headers) are part of
# `make test`. `security-ci` adds bounded fuzzing; `security` is the long form.
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ_ROOT := $(APIKEYS_CACHE)/cargo-fuzz
CARGO_FUZZ_BIN := $(CARGO_FUZZ_ROOT)/bin/cargo-fuzz
FUZZ_TARGETS := cursor query event
FUZZ_TARGET_DIR := $(APIKEYS_CACHE)/fuzz-target
FUZZ_CORPUS := $(APIKEYS_CACHE)/fuzz-corpus
FUZZ_LOGS := $(APIKEYS_CACHE)/fuzz-logs
# Seconds of fuzzing per target: long form, and CI's bounded form.
FUZZ_SECONDS ?= 600
FUZZ_CI_SECONDS ?= 20
# Requests in the long isolation run (CI runs the test's default, 1,000).
ISOLATION_CASES ?= 10000
# Safe Rust only: no sanitizer, so each run executes more inputs.
FUZZ := PATH="$(CARGO_FUZZ_ROOT)/bin:$$PATH" cargo +nightly fuzz
FUZZ_FLAGS := --sanitizer none --target-dir $(FUZZ_TARGET_DIR)

$(CARGO_FUZZ_BIN):
	cargo install --locked --root $(CARGO_FUZZ_ROOT) cargo-fuzz@$(CARGO_FUZZ_VERSION)

fuzz-tools: $(CARGO_FUZZ_BIN)
	@rustup run nightly rustc --version >/dev/null 2>&1 || \
	  { echo "fuzzing needs the nightly toolchain: rustup toolchain install nightly" >&2; exit 1; }

fuzz-build: fuzz-tools
	cd fuzz && $(FUZZ) build $(FUZZ_FLAGS)

# fuzz-run SECONDS: each target in turn, corpus kept in the cache; the event target also
# starts from the sample events. A crash stops with the failing input under fuzz/artifacts/.
define fuzz-run
	mkdir -p $(FUZZ_LOGS)
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_CORPUS)/$$t; \
	  seeds=""; [ $$t = event ] && seeds=$(CURDIR)/events; \
	  start=$$(date +%s); \
	  (cd fuzz && $(FUZZ) run $(FUZZ_FLAGS) $$t $(FUZZ_CORPUS)/$$t $$seeds -- \
	      -max_total_time=$(1) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1) \
	    > $(FUZZ_LOGS)/$$t.log 2>&1 \
	    || { tail -n 40 $(FUZZ_LOGS)/$$t.log; echo "fuzz: $$t FAILED"; exit 1; }; \
	  runs=$$(grep -o 'stat::number_of_executed_units: *[0-9]*' $(FUZZ_LOGS)/$$t.log | grep -o '[0-9]*$$' || true); \
	  echo "fuzz: $$t ok, $$runs inputs in $$(( $$(date +%s) - start )) s, corpus $$(ls $(FUZZ_CORPUS)/$$t | wc -l)"; \
	done
endef

security-ci: fuzz-build
	$(call fuzz-run,$(FUZZ_CI_SECONDS))

security: tools fuzz-build
	APIKEYS_ISOLATION_CASES=$(ISOLATION_CASES) tools/dynamodb-local.sh run \
	  cargo test -p apikeys-tests --test api --locked -- --nocapture \
	  tenancy:: cursors:: faults:: headers:: isolation:: logs::
	$(call fuzz-run,$(FUZZ_SECONDS))
