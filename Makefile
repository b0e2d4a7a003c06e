# Everything runs against real services started by tools/dev-env (NATS 2.15.1, SeaweedFS 4.48,
# PostgreSQL) on loopback, with their data under ./var.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run test lint dev-env dev-env-down openapi

## Run RainLogs: all services, embedded defaults, dev secrets, the simulator as Cloudflare and a
## demo tenant registered through the API.
run: dev-env
	source var/dev-env.sh && $(CARGO) run -p rainlogs -- run --demo --telemetry-listen 127.0.0.1:9464

## Run every test against the real services.
test: dev-env
	source var/dev-env.sh && $(CARGO) nextest run --workspace --no-fail-fast

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

dev-env:
	tools/dev-env up

dev-env-down:
	tools/dev-env down
