##@ Tests

PYTEST_ARGS ?=
# The browser tests' Chromium; empty: /usr/bin/chromium, else chromium or chromium-browser on PATH
# (tests/support/chromium.py). The tests themselves refuse, naming it, only when they are selected.
CHROMIUM ?=
export CHROMIUM
# One make test-<area> per folder of tests/ (tests/support is shared code, not an area); the
# areas whose tests need more set-up than the data keep their own target in their mk file.
TEST_AREAS := $(sort $(filter-out support,$(notdir $(patsubst %/,%,$(dir $(wildcard tests/*/test_*.py))))))
TEST_AREAS_WITH_OWN_TARGET := trainer resilience
# make help lists the generated targets after the Tests section.
HELP_GENERATED = $(foreach area,$(filter-out $(TEST_AREAS_WITH_OWN_TARGET),$(TEST_AREAS)),test-$(subst _,-,$(area))=tests/$(area))

.PHONY: test
test: $(SETUP_STAMP) data ## Run every test (unit, contract, integration, browser, manifests); PYTEST_ARGS=... to narrow
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

define test_area_target
.PHONY: test-$(subst _,-,$(1))
test-$(subst _,-,$(1)): $$(SETUP_STAMP) data
	$$(VENV_PY) -m pytest tests/$(1) -q $$(PYTEST_ARGS)
endef
$(foreach area,$(filter-out $(TEST_AREAS_WITH_OWN_TARGET),$(TEST_AREAS)),$(eval $(call test_area_target,$(area))))

.PHONY: lint-imports
lint-imports: $(SETUP_STAMP) ## Check the layers (.importlinter): tools > load-test support > services > shared library
	$(VENV_BIN)/lint-imports --config .importlinter

.PHONY: lint
lint: $(SETUP_STAMP) ## ruff's lint and format check over the whole tree (ruff.toml); also in make test. Fix: make format
	$(VENV_BIN)/ruff check .
	$(VENV_BIN)/ruff format --check .

.PHONY: format
format: $(SETUP_STAMP) ## Rewrite the tree in ruff's format and apply ruff's safe fixes
	$(VENV_BIN)/ruff check --fix .
	$(VENV_BIN)/ruff format .
