##@ Resilience: faults, abuse, security

# checkov pins packaging<24, which cannot share requirements/constraints.txt with pytest, so it
# gets its own venv, locked by requirements/checkov-constraints.txt (one lock per venv).
CHECKOV_VENV := $(ARTIFACTS)/checkov/venv
CHECKOV_CONSTRAINTS := requirements/checkov-constraints.txt
CHECKOV_STAMP := $(CHECKOV_VENV)/.setup-done
# tests/resilience/test_checkov.py finds checkov here (also when ARTIFACTS is elsewhere).
export CHECKOV_BIN := $(abspath $(CHECKOV_VENV)/bin/checkov)

RESILIENCE_DIR := $(ARTIFACTS)/resilience
RESILIENCE_FIGURES := $(RESILIENCE_DIR)/figures.jsonl
RESILIENCE_DOC := docs/resilience.md
# Other areas' fault tests whose figures the report cites, each run with the figures plugin.
OTHER_FAULT_TESTS := tests/tf_serving/test_versions.py tests/model_exporter/test_kill.py \
  tests/trainer/test_trainer_resume.py tests/tf_serving/test_decode_admission.py \
  tests/tf_serving/test_grpc_load_balancing.py tests/tf_serving/test_standin_hardening.py \
  tests/tf_serving/test_decode_deadline.py \
  tests/web_ui/test_webui_integration.py::test_app_answers_503_while_the_model_server_is_unreachable_and_recovers

.PHONY: checkov-setup
checkov-setup: $(CHECKOV_STAMP) ## Create the isolated checkov venv under ARTIFACTS, pinned by requirements/checkov-constraints.txt

$(CHECKOV_STAMP): $(CHECKOV_CONSTRAINTS)
	$(call tool_venv,checkov,$(CHECKOV_VENV),$(CHECKOV_CONSTRAINTS),checkov)

# make test runs the checkov scan (tests/resilience/test_checkov.py), so it needs the venv.
test: $(CHECKOV_STAMP)

.PHONY: checkov
checkov: $(SETUP_STAMP) $(CHECKOV_STAMP) ## Scan every rendered kustomization with checkov's Kubernetes checks (skips and reasons: kustomize/.checkov.yaml)
	$(VENV_PY) -m pytest tests/resilience/test_checkov.py -q -p no:cacheprovider

.PHONY: test-resilience
test-resilience: $(SETUP_STAMP) $(CHECKOV_STAMP) data ## Run the fault, fuzz, abuse, security and scan tests of tests/resilience
	$(VENV_PY) -m pytest tests/resilience -q -p no:cacheprovider

.PHONY: resilience-report
resilience-report: $(SETUP_STAMP) $(CHECKOV_STAMP) data ## Run tests/resilience and other areas' fault tests, write their figures to docs/resilience.md
	@rm -rf $(RESILIENCE_DIR) && mkdir -p $(RESILIENCE_DIR)
	RESILIENCE_FIGURES=$(abspath $(RESILIENCE_FIGURES)) $(VENV_PY) -m pytest tests/resilience -q -p no:cacheprovider
	@for target in $(OTHER_FAULT_TESTS); do \
	  echo "== $$target"; \
	  RESILIENCE_FIGURES=$(abspath $(RESILIENCE_FIGURES)) \
	    $(VENV_PY) -m pytest "$$target" -q -p no:cacheprovider -p tests.resilience.figures_plugin || exit 1; \
	done
	$(VENV_PY) tests/resilience/report.py $(RESILIENCE_FIGURES) $(RESILIENCE_DOC)
