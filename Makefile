# Two commands for a new machine: `make demo` and `make test`. Both install what they need.
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
ARGS ?=

.PHONY: demo test install lint audit clean bench screenshots

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

install: $(UV)
	$(UV) sync --locked
	$(UV) run --locked python hatch_build.py >/dev/null

## Install, then run the demo practice (SQLite, local mail catcher, demo data).
demo: install
	.venv/bin/portal demo $(ARGS)

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

## Install, then run the whole test suite on SQLite and PostgreSQL with a real SMTP server.
test: lint
	.venv/bin/python -m pytest

## Refresh the README's screenshots in docs/screenshots (the browser tests, on SQLite).
screenshots: install
	PORTAL_SCREENSHOTS_DIR=docs/screenshots .venv/bin/python -m pytest tests/browser -k sqlite

## Audit the locked releases (uv.lock, every group) for published vulnerabilities. Exits 2, never
## clean, when the advisory database cannot be reached.
audit: install
	UV=$(UV) .venv/bin/python scripts/audit_dependencies.py $(ARGS)

## Install, then measure every performance figure (needs wrk: apt-get install -y wrk; and the
## local PostgreSQL). ARGS="--quick" for a smoke run. Results go to docs/benchmarks.md.
bench: install
	.venv/bin/python -m bench $(ARGS)

clean:
	rm -rf .venv .tools dist portal-demo
