# Entry points: `make demo`, `make test` (what CI runs), `make test-fast` and `make bench`. Each creates the
# virtual environment on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_OUT ?= outputs/reproduce/sample

.PHONY: demo test test-fast bench lint env clean

# The environment is rebuilt when the pinned set or the package definition changes.
# --no-deps installs exactly the pinned set: the three OpenCV wheels other packages ask
# for are left out on purpose, so only opencv-contrib-python-headless owns `cv2`.
$(VENV)/.installed: requirements.lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-deps -r requirements.lock.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Reference files a registry package ships and some tests compare against, fetched at set-up so that the
# tests use no network: the basicsr 1.4.2 source distribution (NIQE's code and pristine parameters).
REFERENCES := $(VENV)/references
BASICSR_SDIST := $(REFERENCES)/basicsr-1.4.2.tar.gz
$(BASICSR_SDIST): | $(VENV)/.installed  # order-only: fetched once, not again each time the venv is updated
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: --no-build-isolation -d $(REFERENCES) basicsr==1.4.2

env: $(VENV)/.installed $(BASICSR_SDIST)

# The whole chain on the built-in sample: preprocess, train both models (tiny configs), generate, score every
# row (with ground truth and the floor baselines), print the leaderboard. Finished steps are reused.
demo: env
	$(BIN)/toolkit reproduce sample --work $(DEMO_OUT)

# Test tiers, chosen by marker (see pyproject.toml and tests/conftest.py):
#   test       every acceptance test, trainings included; no benchmarks
#   test-fast  no training, no slow test, no benchmark: for iteration
#   bench      every benchmark module, timed (the memory benchmark at full length; it also runs, short, in test)
# Two pytest-xdist workers, one per core, each taking whole test modules in collection order (the heaviest
# first, tests/conftest.py); what modules share (sample clips, the preprocessed sample, the tiny trainings)
# is built once per run.
XDIST := -n 2 --dist loadfile --no-loadscope-reorder

test: env
	$(BIN)/python -m pytest tests -m "not bench" $(XDIST)

test-fast: env
	$(BIN)/python -m pytest tests -m "not train and not slow and not bench" $(XDIST)

bench: env
	$(BIN)/python -m pytest $(wildcard tests/test_benchmark_*.py) --benchmark-enable

# The layer contract (docs/architecture.md, "Layers"): stages import only the shared core, never each other.
lint: env
	$(BIN)/lint-imports --no-cache .importlinter

clean:
	rm -rf $(VENV) outputs .pytest_cache
