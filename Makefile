# Developer and CI entry points for the ocireg.registry collection. `make test` is what CI runs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
# The steps share the collection trees and the virtual environments: run them one at a time.
.NOTPARALLEL:

NAMESPACE := ocireg
NAME := registry

PYTHON ?= python3
# The Python that ansible-test runs its tests with (both ansible-core versions below support it).
TEST_PYTHON ?= 3.11
PYTEST_WORKERS ?= 2

# Tools for pytest and the linters, from test-requirements.txt.
VENV ?= .venv
# ansible-test comes with ansible-core, so each tested core gets a virtual environment of its own:
# the oldest release meta/runtime.yml allows and the newest one, each at its latest patch release.
CORES := 2.17 2.19
CORE_VERSION_2.17 := 2.17.14
CORE_VERSION_2.19 := 2.19.14
core_venv = $(VENV)-$(1)
core_stamp = $(call core_venv,$(1))/.installed-ansible-core-$(CORE_VERSION_$(1))-and-runtime
# The oldest core also runs the playbook tests (`make pytest-oldest`), so its venv gets what the modules import.
OLDEST_CORE := $(firstword $(CORES))
ZSTANDARD_PIN := $(shell grep -E '^zstandard==' test-requirements.txt)

# pytest imports ansible_collections.ocireg.registry through a symlink to this checkout.
PYTEST_COLLECTIONS := build/collections
PYTEST_LINK := $(PYTEST_COLLECTIONS)/ansible_collections/$(NAMESPACE)/$(NAME)
# ansible-test needs a real directory named ansible_collections/NAMESPACE/NAME: it resolves its working
# directory, so a symlink leads it back to this checkout. It gets a copy of the files git tracks or would
# track, as its own git repository, because it lists content with git and build/ is ignored in this one.
ANSIBLE_TEST_TREE := build/ansible-test/ansible_collections/$(NAMESPACE)/$(NAME)

STAMP := $(VENV)/.installed-test-requirements
ACTIVATE_PATH = PATH="$(abspath $(VENV))/bin:$$PATH"
TIMINGS := build/timings.txt
PYTEST_JUNIT := build/pytest-junit.xml

.PHONY: help
help:  ## List the targets.
	@grep -E '^[a-z0-9.%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 20

# --- environments ------------------------------------------------------------------------------------

.PHONY: venv
venv: $(STAMP) $(foreach core,$(CORES),$(call core_stamp,$(core)))  ## Create .venv and .venv-CORE (idempotent).

$(STAMP): test-requirements.txt requirements.txt
	@test -x "$(VENV)/bin/python" || $(PYTHON) -m venv "$(VENV)"
	"$(VENV)/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
	"$(VENV)/bin/python" -m pip install --quiet --disable-pip-version-check -r test-requirements.txt
	@touch "$@"

# One virtual environment with ansible-core per tested core; the stamp names the exact release.
define core_venv_rule
$(call core_stamp,$(1)): requirements.txt test-requirements.txt
	@test -x "$(call core_venv,$(1))/bin/python" || $$(PYTHON) -m venv "$(call core_venv,$(1))"
	@rm -f "$(call core_venv,$(1))"/.installed-ansible-core-*
	"$(call core_venv,$(1))/bin/python" -m pip install --quiet --disable-pip-version-check \
	  "ansible-core==$(CORE_VERSION_$(1))" -r requirements.txt "$(ZSTANDARD_PIN)"
	@touch "$$@"
endef
$(foreach core,$(CORES),$(eval $(call core_venv_rule,$(core))))

# --- collection trees --------------------------------------------------------------------------------

.PHONY: collection-link
collection-link:
	@mkdir -p "$(dir $(PYTEST_LINK))"
	@test "$$(readlink "$(PYTEST_LINK)" 2>/dev/null)" = "../../../.." || ln -sfn ../../../.. "$(PYTEST_LINK)"

# ansible-test keeps its results, and the venv it delegates to, in the copy's tests/output: that survives re-copying.
.PHONY: collection-tree
collection-tree: collection-link  ## Lay out build/ for pytest and ansible-lint (symlink) and ansible-test (copy).
	@git rev-parse --is-inside-work-tree >/dev/null 2>&1 || { echo "collection-tree: needs a git checkout" >&2; exit 1; }
	@if [[ -d "$(ANSIBLE_TEST_TREE)/tests/output" ]]; then rm -rf build/ansible-test/output-kept; \
	  mv "$(ANSIBLE_TEST_TREE)/tests/output" build/ansible-test/output-kept; fi
	@rm -rf "$(ANSIBLE_TEST_TREE)"
	@mkdir -p "$(ANSIBLE_TEST_TREE)"
	@git ls-files -z --cached --others --exclude-standard \
	  | while IFS= read -r -d '' path; do if [[ -e $$path || -L $$path ]]; then printf '%s\0' "$$path"; fi; done \
	  | xargs -0 -r cp --no-dereference --preserve=mode,timestamps,links --parents -t "$(ANSIBLE_TEST_TREE)"
	@git -C "$(ANSIBLE_TEST_TREE)" init --quiet
	@if [[ -d build/ansible-test/output-kept ]]; then mkdir -p "$(ANSIBLE_TEST_TREE)/tests"; \
	  mv build/ansible-test/output-kept "$(ANSIBLE_TEST_TREE)/tests/output"; fi
	@echo "collection-tree: $(PYTEST_LINK) -> checkout; $(ANSIBLE_TEST_TREE): $$(git -C "$(ANSIBLE_TEST_TREE)" ls-files --others --exclude-standard | wc -l) files"

# --- tests -------------------------------------------------------------------------------------------

.PHONY: pytest
pytest: $(STAMP) collection-link  ## Unit and functional tests with pytest (PYTEST_WORKERS=2 workers).
	@rm -f "$(PYTEST_JUNIT)"
	PYTHONPATH="$(PYTEST_COLLECTIONS)" "$(VENV)/bin/pytest" -n $(PYTEST_WORKERS) -rsx --junitxml="$(PYTEST_JUNIT)" \
	  tests/unit tests/functional

# ansible-test creates its virtual environments without pip and fetches a pip bootstrap script from a
# host that is out of reach here; .ci/get_pip_shim.py does the same job from ensurepip and the package
# index. It goes where ansible-test caches that script, unless a real one is there already.
define core_test_rules
.PHONY: ansible-test-bootstrap-$(1) sanity-$(1) units-$(1)
ansible-test-bootstrap-$(1): $(call core_stamp,$(1))
	@pip_version=$$$$(sed -nE "s/^ *pip='([0-9.]+)',.*/\1/p" \
	    "$(call core_venv,$(1))"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -n 1); \
	test -n "$$$$pip_version" || { echo "cannot tell which pip ansible-test $(1) bootstraps" >&2; exit 1; }; \
	cached="$$$$HOME/.ansible/test/cache/get_pip_$$$${pip_version//./_}.py"; \
	if [[ ! -e $$$$cached ]] || grep -q 'ocireg.registry get-pip shim' "$$$$cached"; then \
	  install -D -m 0644 .ci/get_pip_shim.py "$$$$cached"; \
	fi

sanity-$(1): ansible-test-bootstrap-$(1) collection-tree
	cd "$(ANSIBLE_TEST_TREE)" && "$(abspath $(call core_venv,$(1)))/bin/ansible-test" sanity --venv --python $(TEST_PYTHON)

units-$(1): ansible-test-bootstrap-$(1) collection-tree
	cd "$(ANSIBLE_TEST_TREE)" && "$(abspath $(call core_venv,$(1)))/bin/ansible-test" units --venv --python $(TEST_PYTHON)
endef
$(foreach core,$(CORES),$(eval $(call core_test_rules,$(core))))

.PHONY: sanity
sanity: $(foreach core,$(CORES),sanity-$(core))  ## ansible-test sanity on every core in CORES.

.PHONY: units
units: $(foreach core,$(CORES),units-$(core))  ## ansible-test units on every core in CORES.

# Each linter is a target of its own, so that `make -k lint` (as `make test` runs it) reports them all.
LINTERS := lint-ruff lint-black lint-ansible-lint lint-changelog lint-shell lint-docs
.PHONY: lint $(LINTERS)
lint: $(LINTERS)  ## ruff, black, ansible-lint (production), changelog, shellcheck and docs linters.

lint-ruff: $(STAMP)
	"$(VENV)/bin/ruff" check .

lint-black: $(STAMP)
	"$(VENV)/bin/black" --check --quiet .

# ansible-lint resolves the collection's own modules and roles through the symlink: left to itself, it installs
# a copy into .ansible/ once, which then goes stale (and with --offline, it installs none).
lint-ansible-lint: $(STAMP) collection-link
	$(ACTIVATE_PATH) ANSIBLE_COLLECTIONS_PATH="$(abspath $(PYTEST_COLLECTIONS))" \
	  "$(VENV)/bin/ansible-lint" --offline --profile production

lint-changelog: $(STAMP)
	"$(VENV)/bin/antsibull-changelog" lint

lint-shell:
	@if command -v shellcheck >/dev/null; then echo "shellcheck .ci/run demo/demo.sh"; shellcheck .ci/run demo/demo.sh; \
	else echo "lint-shell: shellcheck is not installed (apt-get install shellcheck): shell scripts not checked"; fi

# Plugin docs are read through the collection path, so this runs in the ansible-test tree.
lint-docs: $(STAMP) collection-tree
	cd "$(ANSIBLE_TEST_TREE)" && $(ACTIVATE_PATH) "$(abspath $(VENV))/bin/antsibull-docs" lint-collection-docs --plugin-docs .

# The plugin, role and guide pages as RST with antsibull-docs, then as HTML with the Sphinx that antsibull-docs
# installs, with its built-in theme: nothing is fetched. Links into docs.ansible.com (ansible.builtin plugins, common
# return values) stay plain text offline, so only those unresolved references are tolerated; any other Sphinx warning
# fails the target.
DOCS_DIR := build/docs
.PHONY: docs
docs: $(STAMP) collection-link  ## Render the plugin, role and guide docs into build/docs/rst and build/docs/html.
	@rm -rf "$(DOCS_DIR)" && mkdir -p "$(DOCS_DIR)/rst" && chmod go-w "$(DOCS_DIR)/rst"
	$(ACTIVATE_PATH) ANSIBLE_COLLECTIONS_PATH="$(abspath $(PYTEST_COLLECTIONS))" \
	  "$(VENV)/bin/antsibull-docs" collection --use-current --squash-hierarchy --fail-on-error \
	  --no-add-antsibull-docs-version --dest-dir "$(DOCS_DIR)/rst" $(NAMESPACE).$(NAME)
	"$(VENV)/bin/sphinx-build" -q -b html -C -D project=$(NAMESPACE).$(NAME) -D extensions=sphinx_antsibull_ext \
	  -D html_theme=alabaster -D highlight_language=YAML+Jinja -D html_copy_source=0 \
	  -w "$(DOCS_DIR)/sphinx-warnings.txt" "$(DOCS_DIR)/rst" "$(DOCS_DIR)/html" 2>"$(DOCS_DIR)/sphinx-stderr.txt" \
	  || { cat "$(DOCS_DIR)/sphinx-stderr.txt" >&2; exit 1; }
	@warnings="$(DOCS_DIR)/sphinx-warnings.txt"; \
	unexpected=$$(grep -E '(WARNING|ERROR|CRITICAL):' "$$warnings" | grep -vE "undefined label: '[^']+'" || true; \
	  grep -E "undefined label: 'ansible_collections\.$(NAMESPACE)\.$(NAME)\." "$$warnings" || true); \
	if [[ -n $$unexpected ]]; then echo "docs: Sphinx warnings (all of them in $(DOCS_DIR)/sphinx-warnings.txt):"; \
	  echo "$$unexpected"; exit 1; fi
	@echo "docs: $(DOCS_DIR)/rst (RST for a docsite), $(DOCS_DIR)/html/index.html"

.PHONY: format
format: $(STAMP)  ## Fix what ruff can and reformat with black.
	"$(VENV)/bin/ruff" check --fix .
	"$(VENV)/bin/black" .

# Every step runs, and every target within it (--keep-going), so that one run reports every problem;
# the environments come first since nothing works without them. The last line sums up pytest's results.
TEST_STEPS := venv collection-tree pytest pytest-oldest sanity units lint galaxy-import
# Every test that runs ansible-playbook, again with the oldest core: its ansible-playbook runs the playbooks
# and its Python runs the modules (support/playbook.py reads OCIREG_TEST_ANSIBLE_PYTHON).
PLAYBOOK_TESTS = $(shell grep -l 'playbook' tests/functional/test_*.py)
PYTEST_OLDEST_JUNIT := build/pytest-oldest-junit.xml

.PHONY: pytest-oldest
pytest-oldest: $(STAMP) $(call core_stamp,$(OLDEST_CORE)) collection-link  ## The playbook tests again, on the oldest core.
	@rm -f "$(PYTEST_OLDEST_JUNIT)"
	PYTHONPATH="$(PYTEST_COLLECTIONS)" OCIREG_TEST_ANSIBLE_PYTHON="$(abspath $(call core_venv,$(OLDEST_CORE)))/bin/python" \
	  "$(VENV)/bin/pytest" -n $(PYTEST_WORKERS) -rsx --junitxml="$(PYTEST_OLDEST_JUNIT)" $(PLAYBOOK_TESTS)

.PHONY: test
test:  ## Everything CI runs: venv, collection-tree, pytest (and pytest-oldest), sanity, units, lint, galaxy-import.
	@mkdir -p build && : > "$(TIMINGS)" && rm -f "$(PYTEST_JUNIT)" "$(PYTEST_OLDEST_JUNIT)"; failed=(); \
	for step in $(TEST_STEPS); do \
	  started=$$(date +%s); \
	  if $(MAKE) --no-print-directory --keep-going $$step; then status=ok; else status=FAILED; failed+=("$$step"); fi; \
	  echo "$$step $$status $$(( $$(date +%s) - started ))s" >> "$(TIMINGS)"; \
	  if [[ $$status == FAILED && ( $$step == venv || $$step == collection-tree ) ]]; then break; fi; \
	done; \
	echo "--- make test: step, result, seconds"; column -t "$(TIMINGS)" 2>/dev/null || cat "$(TIMINGS)"; \
	if (($${#failed[@]})); then echo "make test: failed: $${failed[*]}"; fi; \
	if [[ -f "$(PYTEST_JUNIT)" ]]; then "$(VENV)/bin/python" .ci/junit_summary.py "$(PYTEST_JUNIT)"; fi; \
	if [[ -f "$(PYTEST_OLDEST_JUNIT)" ]]; then \
	  "$(VENV)/bin/python" .ci/junit_summary.py "$(PYTEST_OLDEST_JUNIT)" "pytest on ansible-core $(OLDEST_CORE)"; fi; \
	exit $$(( $${#failed[@]} > 0 ))

# --- demo, changelog, packaging ----------------------------------------------------------------------

# The demo needs the Debian packages first (python3-venv among them), then a virtual environment of its own with
# only what the collection needs at run time (ansible-core and requirements.txt), not the development tools of
# .venv, and cryptography, which signs the demo's image and verifies its signature (ansible-core requires it too;
# named here because the demo does not work without it), then the registry and the playbook.
DEMO_VENV := .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed-ansible-core-$(CORE_VERSION_2.19)-and-runtime-and-cryptography

$(DEMO_STAMP): requirements.txt
	@test -x "$(DEMO_VENV)/bin/python" || $(PYTHON) -m venv "$(DEMO_VENV)"
	@rm -f "$(DEMO_VENV)"/.installed-ansible-core-*
	"$(DEMO_VENV)/bin/python" -m pip install --quiet --disable-pip-version-check \
	  "ansible-core==$(CORE_VERSION_2.19)" -r requirements.txt cryptography
	@touch "$@"

.PHONY: demo
demo:  ## A local registry with sample images (one signed) and playbooks/demo.yml: signed promotion, facts, retention, audit.
	demo/demo.sh install
	$(MAKE) --no-print-directory $(DEMO_STAMP)
	VENV="$(DEMO_VENV)" demo/demo.sh run

.PHONY: demo-stop
demo-stop:  ## Stop the registry make demo started (its storage stays in build/demo).
	demo/demo.sh stop

.PHONY: changelog
changelog: $(STAMP)  ## Lint the fragments and render CHANGELOG.md from changelogs/.
	"$(VENV)/bin/antsibull-changelog" lint
	@if grep -q '^releases: {}' changelogs/changelog.yaml; then \
	  echo "changelog: no release yet, so no CHANGELOG.md (antsibull-changelog release --version X makes one)"; \
	else "$(VENV)/bin/antsibull-changelog" generate; fi

VERSION := $(shell sed -nE 's/^version: *//p' galaxy.yml)
TARBALL := build/dist/$(NAMESPACE)-$(NAME)-$(VERSION).tar.gz

.PHONY: dist
dist: $(STAMP)  ## Build the collection tarball into build/dist/.
	$(ACTIVATE_PATH) "$(VENV)/bin/ansible-galaxy" collection build --force --output-path build/dist .

# galaxy-importer is what Galaxy runs on every upload: a tarball it refuses cannot be published. It gets a virtual
# environment of its own (it needs an attrs older than the one in .venv), with the ansible-core and ansible-lint of
# .venv. Its ansible-test step runs in a container, so it is off (run_ansible_test; make sanity runs ansible-test).
GALAXY_IMPORTER_VERSION := 0.4.44
GALAXY_IMPORTER_VENV := .venv-galaxy-importer
GALAXY_IMPORTER_STAMP := $(GALAXY_IMPORTER_VENV)/.installed-galaxy-importer-$(GALAXY_IMPORTER_VERSION)
ANSIBLE_LINT_PIN := $(shell grep -E '^ansible-lint==' test-requirements.txt)
GALAXY_IMPORT_DIR := build/galaxy-import

$(GALAXY_IMPORTER_STAMP): test-requirements.txt
	@test -x "$(GALAXY_IMPORTER_VENV)/bin/python" || $(PYTHON) -m venv "$(GALAXY_IMPORTER_VENV)"
	@rm -f "$(GALAXY_IMPORTER_VENV)"/.installed-galaxy-importer-*
	"$(GALAXY_IMPORTER_VENV)/bin/python" -m pip install --quiet --disable-pip-version-check \
	  "galaxy-importer==$(GALAXY_IMPORTER_VERSION)" "ansible-core==$(CORE_VERSION_2.19)" "$(ANSIBLE_LINT_PIN)"
	@touch "$@"

# First what users expect of the tarball (no tests/, no empty directories), then galaxy-importer's own checks.
.PHONY: galaxy-import
galaxy-import: dist $(GALAXY_IMPORTER_STAMP)  ## Check the built tarball as Galaxy does on upload (galaxy-importer).
	@listing=$$(tar tzf "$(TARBALL)"); \
	shipped_tests=$$(grep -E '^tests(/|$$)' <<<"$$listing" || true); \
	empty_dirs=$$(awk '/\/$$/ { dirs[$$0] = 1; next } \
	  { path = $$0; while (sub(/[^\/]*\/?$$/, "", path) && path != "") used[path] = 1 } \
	  END { for (dir in dirs) if (!(dir in used)) print dir }' <<<"$$listing" | sort); \
	if [[ -n $$shipped_tests || -n $$empty_dirs ]]; then \
	  echo "galaxy-import: $(TARBALL) ships what it should not (see build_ignore in galaxy.yml):"; \
	  if [[ -n $$shipped_tests ]]; then echo "  tests:"; sed 's/^/    /' <<<"$$shipped_tests"; fi; \
	  if [[ -n $$empty_dirs ]]; then echo "  empty directories:"; sed 's/^/    /' <<<"$$empty_dirs"; fi; \
	  exit 1; \
	fi; \
	echo "galaxy-import: $(TARBALL): $$(grep -vc '/$$' <<<"$$listing") files, no tests/, no empty directories"
	@rm -rf "$(GALAXY_IMPORT_DIR)" && mkdir -p "$(GALAXY_IMPORT_DIR)"
	@printf '%s\n' '[galaxy-importer]' 'run_ansible_test = False' 'run_ansible_lint = True' 'offline_ansible_lint = True' \
	  'check_changelog = True' 'ansible_local_tmp = $(abspath $(GALAXY_IMPORT_DIR))/ansible-tmp' \
	  > "$(GALAXY_IMPORT_DIR)/galaxy-importer.cfg"
	cd "$(GALAXY_IMPORT_DIR)" && mkdir -p home && GALAXY_IMPORTER_CONFIG="$$PWD/galaxy-importer.cfg" \
	  PATH="$(abspath $(GALAXY_IMPORTER_VENV))/bin:$$PATH" HOME="$$PWD/home" \
	  "$(abspath $(GALAXY_IMPORTER_VENV))/bin/python" -m galaxy_importer.main "$(abspath $(TARBALL))" | tee importer.log
	@if grep -q '^WARNING' "$(GALAXY_IMPORT_DIR)/importer.log"; then \
	  echo "galaxy-import: passed, with warnings that Galaxy would show (above)"; fi

.PHONY: clean
clean:  ## Remove build output, test output and caches (keeps the virtual environments).
	rm -rf build/ansible-test build/dist build/galaxy-import "$(TIMINGS)" "$(PYTEST_JUNIT)" tests/output .pytest_cache \
	  .ruff_cache
	find . \( -name .git -o -name '.venv*' -o -name build \) -prune -o -name __pycache__ -type d -print0 | xargs -0 -r rm -rf

.PHONY: distclean
distclean: clean  ## clean, and remove the virtual environments.
	rm -rf "$(VENV)" $(foreach core,$(CORES),"$(call core_venv,$(core))") "$(DEMO_VENV)" "$(GALAXY_IMPORTER_VENV)"
