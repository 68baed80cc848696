# One command builds the book, one runs the tests. Everything runs inside .venv.
PROFILE ?= quick
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test env data unit smoke-book nbval browser-check paper-shape slurm-check lint bench mutation clean

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; set PYTHON=..." >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

env: $(STAMP)

data: env
	$(PY) -m kdlib data

## book: execute every chapter under PROFILE (default quick) and build the HTML book
book: data
	$(PY) -m kdlib book $(PROFILE)

## lint: ruff on every Python folder, and the import layers (import-linter's contracts in
## pyproject.toml: kdlib never imports benchmarks/, tooling > pages > staleness > chapters >
## library, no chapter imports another)
lint: env
	$(VENV)/bin/ruff check kdlib tests benchmarks scripts
	$(VENV)/bin/lint-imports

unit: env data
	$(VENV)/bin/pytest -q tests

smoke-book: env data
	$(PY) -m kdlib book smoke

# nbval re-executes the smoke-executed notebooks in scratch result folders and compares
# the outputs of the cells marked NBVAL_CHECK_OUTPUT with the stored ones. The runs are
# re-made first as the book makes them (kdlib run: one worker a core, so one thread each);
# a run made in the notebook's own kernel would use every core's thread, and a float sum
# over another number of threads rounds differently (records name their cpu_threads).
# nbval and browser-check read the smoke book; `make test` builds it once (SMOKE_BUILT=1)
SMOKE := $(if $(SMOKE_BUILT),,smoke-book)
nbval: $(SMOKE)
	@tmp=$$(mktemp -d); export KDLIB_RESULTS=$$tmp/results KDLIB_CHECKPOINTS=$$tmp/models; \
	  $(PY) -m kdlib run smoke --compute-only \
	  && $(VENV)/bin/pytest -q -p no:cacheprovider --nbval-lax _build/smoke/site/book/chapters; \
	  rc=$$?; rm -rf $$tmp; exit $$rc

## browser-check: every page of the smoke book in headless Chromium (Debian: apt-get install
## chromium): math rendered offline, figures loaded, glued values present
browser-check: $(SMOKE)
	$(PY) -m kdlib browser-check smoke

## paper-shape: every chapter with the paper profile's settings at a tiny size (CIFAR-10
## stand-in folder, full-width networks, AutoAttack over several chunks), in _build/paper-shape
paper-shape: env data
	$(PY) -m kdlib paper-shape

## slurm-check: the SLURM executor for real: a one-node SLURM cluster on this machine
## (scripts/slurm_cluster.sh start: as root on Debian it installs slurm-wlm and munge, starts
## munged, slurmctld and slurmd, and fails with the reason if the node does not come up), the
## smoke profile's runs as one SLURM array and with the local executor, every record compared;
## it stops the cluster afterwards unless one was running before it
slurm-check: env data
	@if bash scripts/slurm_cluster.sh status >/dev/null 2>&1; then up=1; else up=0; fi; \
	bash scripts/slurm_cluster.sh start && $(PY) scripts/slurm_check.py; rc=$$?; \
	if [ $$up = 1 ]; then echo "[slurm-check] the cluster ran before: left running"; \
	else bash scripts/slurm_cluster.sh stop; fi; \
	exit $$rc

## test: lint, unit tests, the smoke book, nbval on its executed notebooks, the paper shape,
## the SLURM executor on a one-node cluster; each step timed, after a line naming the CPU
## (model, kernel set `cpu_isa`, bf16 matrix units), so a slow step on another kind of
## machine shows in the log. The smoke book is built once for nbval and the browser check.
## A step this machine cannot run (scripts/test_prereq.sh: the SLURM cluster without root,
## the browser check without Chromium) is skipped with one line saying what it needs; under
## CI (CI=true, as root) a skipped step fails the run.
TEST_STEPS := env lint unit smoke-book nbval browser-check paper-shape slurm-check
test:
	@start=$$(date +%s); times=""; skipped=""; \
	for step in $(TEST_STEPS); do \
	  if ! why=$$(bash scripts/test_prereq.sh $$step); then \
	    if [ -n "$${CI:-}" ]; then echo "[test] error: CI cannot skip $$step: $$why" >&2; exit 1; fi; \
	    echo "[test] skipped $$step: $$why"; skipped="$$skipped $$step"; continue; \
	  fi; \
	  t0=$$(date +%s); \
	  $(MAKE) --no-print-directory $$step SMOKE_BUILT=1 || { echo "[test] $$step failed after $$(( $$(date +%s) - t0 )) s" >&2; exit 1; }; \
	  times="$$times$$step $$(( $$(date +%s) - t0 )) s; "; \
	  echo "[test] $$step: $$(( $$(date +%s) - t0 )) s"; \
	  if [ $$step = env ]; then $(PY) -m kdlib machine; fi; \
	done; \
	echo "[test] passed in $$(( $$(date +%s) - start )) s: $$times"; \
	if [ -n "$$skipped" ]; then echo "[test] skipped (see above):$$skipped"; fi

bench: env
	$(PY) -m benchmarks.run

## mutation: mutation testing of the core maths (losses, stats, verdicts, instability, PGD,
## omitted-digit split and bias shift) with mutmut; prints killed/total per module. The scope is the list
## in tests/mutation_report.py; the tests it runs are [tool.mutmut] in pyproject.toml. It uses
## the existing $(VENV) (no `env` step, which would reinstall it) and the MNIST file under
## KDLIB_DATA (`make data`). MUTATION_MIN=90 makes it fail below 90% in any module.
MUTMUT_VERSION := 3.8.1
KDLIB_DATA ?= $(CURDIR)/data
MUTATION_MIN ?= 0
## MODULES=stats verdicts limits the run to those modules of the scope (default: all);
## MUTATION_CHILDREN sets mutmut's parallel workers (default 1)
MODULES ?=
MUTATION_CHILDREN ?= 1
mutation:
	@test -x $(PY) || { echo "error: no $(PY); run 'make env' or set VENV=..." >&2; exit 1; }
	@test -f $(KDLIB_DATA)/mnist.pt || { echo "error: no $(KDLIB_DATA)/mnist.pt; run 'make data' or set KDLIB_DATA=..." >&2; exit 1; }
	@[ "$$($(PY) -c 'import importlib.metadata as m; print(m.version("mutmut"))' 2>/dev/null)" = "$(MUTMUT_VERSION)" ] \
	  || $(PY) -m pip install --quiet mutmut==$(MUTMUT_VERSION)
	rm -rf mutants && mkdir mutants
	$(PY) tests/mutation_report.py globs --modules $(MODULES) | KDLIB_DATA=$(KDLIB_DATA) xargs $(VENV)/bin/mutmut run --max-children $(MUTATION_CHILDREN) >mutants/run.log 2>&1 \
	  || { tail -c 3000 mutants/run.log; exit 1; }
	$(PY) tests/mutation_report.py --min $(MUTATION_MIN) --modules $(MODULES)

clean:
	rm -rf _build
