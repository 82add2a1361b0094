# The two commands a reader needs: `make book` (build the HTML) and `make test` (run every check).
# Both do all the set-up they need on a fresh Debian/Ubuntu machine; re-running them is fast.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
READY := $(VENV)/.ready
# The git remote `make publish` pushes to (`make publish REMOTE=...`; the tests use a local bare repo).
REMOTE := origin
# Notebooks must not depend on hash randomisation (set printing order, ...).
export PYTHONHASHSEED := 0
# The numeric configuration (defined in mlsd/numeric.py; README, "Numeric configuration"): numpy,
# OpenBLAS and faiss held at their AVX2 kernels, exported to every recipe below so that every
# kernel a target starts computes exactly what the stored outputs hold, on any x86-64 CPU.
$(foreach assignment,$(shell $(PYTHON) -m mlsd.numeric exports),$(eval export $(assignment)))

NBVAL := --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg

.PHONY: help setup lock lab book student test publish bench keys assignment grade data outputs clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 10

setup: $(READY)  ## create .venv and install the lock (requirements.txt)

$(READY): requirements.txt pyproject.toml mlsd/numeric.py
	@tools/require-system.sh "python3-venv=$(PYTHON) -c 'import ensurepip, venv'"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@# Jupyter started from .venv any way (not only `make lab`) runs its kernels under the configuration.
	$(BIN)/python -m mlsd.numeric install-kernel
	@touch $@

requirements.txt:
	@echo "requirements.txt, the lock every install uses, is missing: restore it with" \
		"'git checkout requirements.txt', or regenerate it from requirements.in with 'make lock'." >&2
	@exit 1

lock:  ## re-resolve requirements.in, transitive dependencies included, into the lock requirements.txt
	$(PYTHON) tools/lock.py

lab: $(READY)  ## open the chapters in JupyterLab, kernels under the book's numeric configuration
	@tools/require-system.sh "graphviz=dot -V"
	$(BIN)/jupyter lab chapters

# --all: Sphinx only reports a page's warnings when it re-reads the page, so an incremental
# build after a failed one would pass without fixing anything.
book: $(READY)  ## build the HTML book into _build/html (from stored outputs, warnings are errors)
	@tools/require-system.sh "graphviz=dot -V"
	$(BIN)/jupyter-book build --all -W -n --keep-going .
	@echo "The book is at $(CURDIR)/_build/html/index.html"

student: $(READY)  ## build the student edition, every solution removed, into _build/student/html (STUDENT_REPO=url for Binder)
	@tools/require-system.sh "graphviz=dot -V"
	$(BIN)/python tools/student.py

# In `make test` an OpenMP thread waiting at a barrier sleeps instead of spinning: it runs two
# notebooks at once on two cores, each with two threads, and spinning threads then hold the cores
# the others wait for (chapters 9 and 11, side by side, took 197 s and 163 s spinning, 70 s each
# asleep). Only there: a notebook running alone (`make bench`, `make outputs`, a reader's kernel)
# pays for every wake-up of an idle core instead, and chapter 13's boosted heads fitted in 14.6 s
# asleep against 5.9 s with the default policy. Scheduling only: no result changes.
#
# The two editions build side by side (each Sphinx build runs on one core; the student edition
# builds its own copy of the sources, so they share no file). The chapters are collected before
# the tests: pytest-xdist hands out files in collection order, so the long notebooks start first
# and the short test files fill the gaps at the end, instead of a notebook finishing alone.
test: export OMP_WAIT_POLICY := PASSIVE
test: $(READY)  ## unit tests, strict nbval on every chapter, data checksums and site tests (both editions)
	@# every system package first, in one apt-get: two builds installing Graphviz at once would
	@# collide on apt's lock
	@tools/require-system.sh "graphviz=dot -V" "chromium=chromium --version"
	$(MAKE) --no-print-directory -j2 book student
	$(BIN)/python -m pytest -n 2 --dist loadfile $(NBVAL) chapters tests

# ghp-import commits _build/html to a local `gh-pages` branch without touching the work tree, then
# pushes it. --no-jekyll adds .nojekyll, or GitHub Pages would drop _static/ and _sources/;
# --force because a fresh clone (CI) has no gh-pages history to build on.
publish: book  ## build the book, then push it to the gh-pages branch of REMOTE (default origin) for GitHub Pages
	$(BIN)/ghp-import --no-jekyll --push --force --remote $(REMOTE) --branch gh-pages \
		--message "Publish the book from $$(git rev-parse --short HEAD)" _build/html

# The seeds `make bench` runs every chapter with a headline at, and records (SEEDS=0,1,2,3,4 for more).
SEEDS := 0,1,2

bench: $(READY)  ## run chapters in fresh kernels (NB=..., SEEDS=...; SEED=n once, unrecorded): seconds, peak memory, headline; records chapters/bench.json
	@tools/require-system.sh "graphviz=dot -V"
	$(BIN)/python tools/bench.py $(if $(SEED),--seed $(SEED),--seeds $(SEEDS)) $(or $(NB),chapters/*.ipynb)

keys: $(READY)  ## answer keys: run the solutions at SEED=n (default: as stored; NB=... for one chapter) into _build/keys/seed-n
	@tools/require-system.sh "graphviz=dot -V"
	$(BIN)/python tools/keys.py $(if $(SEED),--seed $(SEED)) $(or $(NB),chapters/*.ipynb)

assignment: $(READY)  ## an otter-grader assignment of NB=chapters/x.ipynb for SEEDS (students' seeds) into _build/assignments
	@test -n "$(NB)" || { echo "make assignment NB=chapters/x.ipynb SEEDS=0,1,2: name the chapter" >&2; exit 2; }
	$(BIN)/python tools/assignment.py --seeds $(SEEDS) $(NB)

grade: $(READY)  ## grade a submitted notebook: make grade NB=chapters/x.ipynb SUBMISSION=path (after make assignment)
	@test -n "$(NB)" -a -n "$(SUBMISSION)" || { echo "make grade NB=chapters/x.ipynb SUBMISSION=notebook.ipynb" >&2; exit 2; }
	$(BIN)/python tools/assignment.py --grade $(SUBMISSION) $(NB)

data: $(READY)  ## regenerate data/ from mlsd's generators (byte-identical; see data/SHA256SUMS)
	$(BIN)/python -m mlsd.datasets

outputs: $(READY)  ## re-execute notebooks (NB=chapters/x.ipynb, default all) and store their outputs
	@tools/require-system.sh "graphviz=dot -V"
	$(BIN)/python tools/notebooks.py $(or $(NB),chapters/*.ipynb)

clean:  ## remove the built book (keeps .venv)
	rm -rf _build
