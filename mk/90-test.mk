##@ Tests

PYTEST_ARGS ?=

.PHONY: test
test: $(SETUP_STAMP) data ## Run every test (unit, contract, integration, browser, manifests); PYTEST_ARGS=... to narrow
	@test -x /usr/bin/chromium || { echo "error: the browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 2; }
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

.PHONY: lint-imports
lint-imports: $(SETUP_STAMP) ## Check the layers (.importlinter): tools > load-test support > services > shared library
	$(VENV_BIN)/lint-imports --config .importlinter
