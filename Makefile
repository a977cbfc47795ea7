# The two commands of this repository are `make book` and `make test`.
# Both create .venv with the pinned toolchain the first time they run.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed

# Offline SST-2 mirror for our machines and CI; on Colab the Hub is used instead.
COURSE_DATA ?= $(abspath ../shared/data)
export COURSE_DATA
# Our machines have no network: never let transformers/datasets wait on the Hub.
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

PROFILE ?= cpu
NOTEBOOKS ?= $(wildcard chapters/*.ipynb)

.PHONY: book test venv lint unit notebooks book-strict execute setup-cells bench clean exercises

book: $(STAMP)
	$(BIN)/jupyter-book build .
	@echo "Book built: _build/html/index.html"

test: $(STAMP) lint unit notebooks book-strict
	@echo "make test: all checks passed"

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip==25.3"
	# torch first, pinned, so that nothing later pulls a multi-GB CUDA build.
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -r requirements/dev.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check course_utils tests benchmarks tools chapters

unit: $(STAMP)
	$(BIN)/pytest -q -n 2 tests

# Every chapter notebook, top to bottom in a fresh kernel, smoke profile.
notebooks: $(STAMP)
	COURSE_PROFILE=smoke $(BIN)/pytest -q -n 2 --dist loadfile -p no:cacheprovider \
		--nbval-lax --nbval-current-env $(NOTEBOOKS)

book-strict: $(STAMP)
	rm -rf _build/html
	$(BIN)/jupyter-book build -W -n --keep-going .

# Re-execute notebooks in place under PROFILE, store outputs, record run time
# and peak memory in book/results.json:  make execute PROFILE=cpu NOTEBOOKS=chapters/00_environment.ipynb
execute: $(STAMP)
	$(PY) tools/notebooks.py execute --profile $(PROFILE) $(NOTEBOOKS)

# Rewrite the first code cell of every notebook from the one manifest.
setup-cells: $(STAMP)
	$(PY) tools/notebooks.py sync-setup $(NOTEBOOKS)

bench: $(STAMP)
	$(PY) benchmarks/fit_overhead.py

clean:
	rm -rf _build

# Regenerate student notebooks and test files from the instructor sources (exercises/source/).
exercises: $(STAMP)
	$(PY) tools/build_exercises.py
