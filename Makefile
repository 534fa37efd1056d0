# `make test` is the README's test command: it sets up .venv on first use, then runs the suite.
.PHONY: test lint venv
venv:
	@bash scripts/ensure_venv.sh
test: venv
	.venv/bin/python -m pytest -q
lint: venv
	.venv/bin/ruff check lib tests bench scripts
	.venv/bin/lint-imports
