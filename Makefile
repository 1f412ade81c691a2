# ftps-kit: the single entry point. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    ?= $(CURDIR)/.venv
# The stock-Debian-12 path: a venv from Debian's own Python 3.11 (ansible-core 2.19), no pyenv.
STOCK_PYTHON ?= /usr/bin/python3.11
STOCK_VENV   ?= $(CURDIR)/.venv-stock
# `make molecule MOLECULE_SCENARIOS="pki default"` runs only these.
MOLECULE_SCENARIOS ?=
# Scenarios run side by side (lab/molecule-all.sh FTPSKIT_MOLECULE_JOBS): 2 on a 2-core machine
# cuts `make test` by a quarter; `make molecule MOLECULE_JOBS=1` runs them one after another.
MOLECULE_JOBS ?= 2
# `make bench-fleet BENCH_FLEET_SIZES=1,5 BENCH_FLEET_ARGS='--rotate-batched 25%'`: fleet sizes
# (servers) and more options of tests/bench/bench_fleet.py.
BENCH_FLEET_SIZES ?= 1,5,10,20
BENCH_FLEET_ARGS ?=
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(BIN):$(PATH)
export PYTHONDONTWRITEBYTECODE := 1

# Every failing step says which one it was.
step = @printf '\n==> [%s] %s\n' "$@" "$(1)"

COLLECTION_LINK := .cache/collections/ansible_collections/ftpskit/ftps

.PHONY: help setup venv collection-link host lab-images lab lab-down lint sanity unit integration pytest molecule molecule-faults test bench bench-fleet bench-proof demo wheelhouse clean clean-lab test-stock test-installed test-ee docs docs-site release

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: host venv ## Install host packages (apt, podman config) and the controller venv; idempotent

host: ## Host packages and podman configuration for the lab
	$(call step,host packages and podman configuration)
	bash lab/setup-host.sh || { echo "make: step 'host' (lab/setup-host.sh) failed" >&2; exit 1; }

venv: $(VENV)/.stamp collection-link ## The controller virtualenv (newest Python 3.11+, ansible-core, test tools)

# The checkout is the collection ftpskit.ftps (galaxy.yml): ansible.cfg's collections_path (and
# Molecule's ANSIBLE_COLLECTIONS_PATH) finds it through this relative link to the repository root.
collection-link: ## Link .cache/collections/ansible_collections/ftpskit/ftps to this checkout
	@mkdir -p $(dir $(COLLECTION_LINK)) && ln -sfn ../../../.. $(COLLECTION_LINK)

$(VENV)/.stamp: pyproject.toml src/pyproject.toml src/common/pyproject.toml lab/find-python.sh
	$(call step,controller virtualenv)
	test -x $(PY) || { py=$$(bash lab/find-python.sh) && "$$py" -m venv $(VENV); } \
		|| { echo "make: step 'venv' failed: no usable Python for the venv (lab/find-python.sh)" >&2; exit 1; }
	$(PY) -m pip install -q --upgrade pip && $(PY) -m pip install -q -e '.[test]' -e ./src -e ./src/common \
		|| { echo "make: step 'venv' failed: pip install" >&2; exit 1; }
	touch $@

lab-images: setup ## Build the Debian 12 and 13 lab images (cached by recipe hash)
	$(call step,lab images)
	bash lab/build-image.sh bookworm || { echo "make: step 'lab-images' (bookworm) failed" >&2; exit 1; }
	bash lab/build-image.sh trixie || { echo "make: step 'lab-images' (trixie) failed" >&2; exit 1; }

lab: lab-images ## Bring up the lab: Debian 12 + 13 servers and a client on their own network
	$(call step,lab up)
	bash lab/lab.sh up || { echo "make: step 'lab' (lab/lab.sh up) failed" >&2; exit 1; }

lab-down: ## Remove the lab's containers and network (only ours)
	$(call step,lab down)
	bash lab/lab.sh down || { echo "make: step 'lab-down' (lab/lab.sh down) failed" >&2; exit 1; }

lint: venv ## ruff, yamllint, ansible-lint (production profile), antsibull-changelog lint
	$(call step,lint)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check src plugins tests molecule || { echo "run: ruff format src plugins tests molecule" >&2; exit 1; }
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint
	$(BIN)/antsibull-changelog lint || { echo "make: step 'lint' failed: changelogs/fragments (antsibull-changelog lint)" >&2; exit 1; }
	$(BIN)/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

sanity: venv ## ansible-test sanity on the built collection (the venv's ansible-core; ignores in tests/sanity/)
	$(call step,ansible-test sanity)
	VENV=$(VENV) bash lab/sanity.sh || { echo "make: step 'sanity' failed (lab/sanity.sh)" >&2; exit 1; }

docs: venv collection-link ## Regenerate the role READMEs' variable tables from meta/argument_specs.yml
	$(PY) lab/role_docs.py

docs-site: venv ## Documentation site (antsibull-docs + the guides, sphinx-build -W) in .cache/docs-site/html, checked in headless Chromium
	$(call step,documentation site: antsibull-docs and sphinx-build -W then headless Chromium)
	VENV=$(VENV) bash lab/docs-site.sh || { echo "make: step 'docs-site' failed (lab/docs-site.sh)" >&2; exit 1; }

unit: venv ## Unit tests (no hosts, no network)
	$(call step,unit tests)
	$(BIN)/pytest -q tests/unit

integration: venv ## Integration tests: ftpsd on loopback driven by real clients
	$(call step,integration tests)
	$(BIN)/pytest -q tests/integration

pytest: venv ## Unit + integration tests in one run (its summary closes `make test`)
	$(call step,unit + integration tests)
	$(BIN)/pytest tests/unit tests/integration

molecule: lab-images ## Every Molecule scenario: create, converge, idempotence, verify, destroy
	$(call step,molecule)
	VENV=$(VENV) FTPSKIT_MOLECULE_JOBS=$(MOLECULE_JOBS) bash lab/molecule-all.sh $(MOLECULE_SCENARIOS) || { echo "make: step 'molecule' failed (see the scenario and step above)" >&2; exit 1; }

test: setup lint sanity unit docs-site molecule test-installed test-ee test-stock pytest ## setup, lint, ansible-test sanity, unit, the docs site, molecule, the installed collection, AWX's way (EE + ansible-runner), the stock-Debian-12 path, then unit + integration (its summary ends the output); what CI runs

test-installed: lab-images ## The collection as a user installs it: tarball + requirements.yml in a directory outside the repo, site.yml on the lab
	$(call step,installed collection: a user's playbook outside the repository)
	VENV=$(VENV) bash lab/installed-form.sh || { echo "make: step 'test-installed' failed" >&2; exit 1; }

test-ee: venv lab-images ## AWX's way: an EE image (ansible-builder), jobs site/site/rotate/report by ansible-runner, each in a new container
	$(call step,execution environment: four ansible-runner jobs, each in a new EE container)
	VENV=$(VENV) bash lab/ee-jobs.sh || { echo "make: step 'test-ee' failed (lab/ee-jobs.sh)" >&2; exit 1; }

# No other Python visible: pyenv off PATH and PYENV_ROOT pointing nowhere (a tool that looks for
# $PYENV_ROOT/versions/3.13.* must not find one either).
test-stock: host ## Stock Debian 12: a venv from /usr/bin/python3.11 (ansible-core 2.19, no pyenv): lint, unit, Molecule stock (site.yml to Debian 12 + 13 servers)
	$(call step,stock Debian 12 controller: $(STOCK_PYTHON) in $(STOCK_VENV))
	test -x $(STOCK_PYTHON) || { echo "make: step 'test-stock' failed: $(STOCK_PYTHON) missing (apt-get install python3 python3-venv)" >&2; exit 1; }
	env -u PYENV_VERSION PYENV_ROOT=/nonexistent/pyenv PATH=/usr/sbin:/usr/bin:/sbin:/bin FTPSKIT_PYTHON=$(STOCK_PYTHON) \
	  $(MAKE) --no-print-directory VENV=$(STOCK_VENV) MOLECULE_SCENARIOS=stock venv lint unit molecule \
	  || { echo "make: step 'test-stock' failed (Python 3.11 / ansible-core 2.19)" >&2; exit 1; }
	$(STOCK_VENV)/bin/ansible --version | sed -n 1p

molecule-faults: lab-images ## Issue 20's fault scenario alone (`make molecule` and so `make test` run it too)
	$(call step,molecule faults)
	VENV=$(VENV) bash lab/molecule-all.sh faults || { echo "make: step 'molecule-faults' failed" >&2; exit 1; }

bench: venv ## Benchmarks (not tests): ftpsd vs vsftpd, ProFTPD and pyftpdlib with floor rows, PKI signing at scale, fleet scale
	$(call step,benchmarks)
	$(BIN)/python -m tests.bench.bench_pki --hosts 1000
	$(BIN)/python -m tests.bench $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-fleet
	$(MAKE) --no-print-directory bench-proof

bench-proof: venv ## Proof benchmark: sequential vs parallel probing of BENCH_FLEET_SIZES ftpsd servers on 127.0.0.1
	$(call step,proof benchmark: $(BENCH_FLEET_SIZES) servers (ftpsd on 127.0.0.1))
	$(BIN)/python -m tests.bench.bench_proof --sizes $(BENCH_FLEET_SIZES)

bench-fleet: venv ## Fleet benchmark: site.yml, its re-run and rotate.yml on lab fleets of BENCH_FLEET_SIZES servers
	$(call step,fleet benchmark: $(BENCH_FLEET_SIZES) servers (lab images, network ftpskit-bench))
	@podman image exists localhost/ftpskit-debian:13 || { echo "make: step 'bench-fleet' needs the lab images (make lab-images)" >&2; exit 1; }
	$(BIN)/python -m tests.bench.bench_fleet --sizes $(BENCH_FLEET_SIZES) $(BENCH_FLEET_ARGS)

wheelhouse: venv ## Wheels for the servers (ftpsd + deps for each host Python), built once
	$(call step,wheelhouse)
	VENV=$(VENV) bash lab/wheelhouse.sh

demo: lab wheelhouse ## Lab up, converge site.yml, prove a verified transfer, print a summary
	$(call step,demo: converge playbooks/site.yml on the lab; its last play is the proof and the summary)
	time $(BIN)/ansible-playbook -i inventories/lab playbooks/site.yml \
	  || { echo "make: step 'demo' (ansible-playbook playbooks/site.yml) failed" >&2; exit 1; }

# VERSION: the release to cut, a semantic version (`make release VERSION=0.1.0`).
release: venv ## Cut release VERSION=x.y.z: changelog + CHANGELOG.rst (antsibull-changelog), galaxy.yml version, dist/ tarball; no commit, no tag
	$(call step,release $(VERSION))
	VENV=$(VENV) bash lab/release.sh "$(VERSION)"

clean: ## Remove the venv, caches and the lab's wheelhouse (not the lab's CA, not the lab images)
	rm -rf $(VENV) .pytest_cache .ruff_cache .cache .ansible inventories/lab/.ftps-kit/wheelhouse ftpskit-ftps-*.tar.gz

clean-lab: ## Remove everything the kit made on this machine (its images, containers, networks, venv, caches); nothing else
	$(call step,clean-lab: the kit's own images, containers, networks, venv and caches)
	bash lab/clean-lab.sh || { echo "make: step 'clean-lab' failed" >&2; exit 1; }
