# apikeys: `make run` serves the API on localhost:3000; `make test` runs every test against
# DynamoDB Local and lints the template.
# It installs what is missing: DynamoDB Local (npm) and the Python tools (venv), into
# APIKEYS_CACHE (default: .cache/ in the clone; CI points it outside).

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export APIKEYS_CACHE ?= $(CURDIR)/.cache
VENV := $(APIKEYS_CACHE)/venv
PY_REQS := tools/requirements.txt
STAMP := $(VENV)/.installed-$(shell sha256sum $(PY_REQS) | cut -c1-12)
# checkov pins a boto3 that aws-sam-cli cannot share: it gets a venv of its own.
CHECKOV_VENV := $(APIKEYS_CACHE)/venv-checkov
CHECKOV_REQS := tools/requirements-checkov.txt
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(shell sha256sum $(CHECKOV_REQS) | cut -c1-12)

# SAM and cfn-lint need a region and no telemetry; no credentials are used.
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY := 0

.PHONY: help tools test test-rust lint lint-rust lint-template fmt
.PHONY: run cli invoke test-run build

help:
	@echo "make run            serve the API at http://localhost:3000 (PORT, DDB_PORT, MEMORY=1)"
	@echo "make cli ARGS=...   the admin CLI against the local DynamoDB of make run"
	@echo "make invoke EVENT=events/<file>.json   invoke a function of make run with a sample event"
	@echo "make build          sam build: the arm64 bootstrap of each function in template.yaml"
	@echo "make test           run all tests against DynamoDB Local, and lint the template"
	@echo "make lint           cargo fmt --check, clippy -D warnings, template lint"
	@echo "make tools          install DynamoDB Local and the Python tools"
	@echo "make lint-template  cfn-lint (+ serverless rules), sam validate --lint, checkov, OpenAPI lint"

$(STAMP): $(PY_REQS)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -r $(PY_REQS)
	rm -f $(VENV)/.installed-* && touch $@

$(CHECKOV_STAMP): $(CHECKOV_REQS)
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r $(CHECKOV_REQS)
	rm -f $(CHECKOV_VENV)/.installed-* && touch $@

tools: $(STAMP) $(CHECKOV_STAMP)
	tools/dynamodb-local.sh install

test: tools test-rust lint-template test-run build

test-rust:
	tools/dynamodb-local.sh run cargo test --workspace --locked

lint: lint-rust lint-template

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
run: tools
	@tools/run.sh

cli:
	@tools/run.sh cli $(ARGS)

invoke: tools
	@tools/run.sh invoke "$(EVENT)"

# `make run` end to end: start it, real HTTP requests, the CLI, every sample event, Ctrl-C.
test-run: tools
	tests/run.sh

# --- Build -----------------------------------------------------------------------------------
# What template.yaml names, built the way SAM deploys it (cargo-lambda, zig for arm64).
# The arm64 standard library comes from rustup first: cargo-lambda would fetch it for each
# function at once, and those fetches race.
build: $(STAMP)
	rustup target add aarch64-unknown-linux-gnu 2>&1 | grep -v "is up to date" || true
	PATH="$(VENV)/bin:$$PATH" $(VENV)/bin/sam build --template template.yaml
	@python3 tools/check-build.py template.yaml .aws-sam/build
