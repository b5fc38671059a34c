# The two commands: `make demo` runs the main job, `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck pytest fuzz bench bench-quick bench-ui screenshots power overfit-power clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@# Venvs made before the rename hold the distribution as `tracker`: drop it (ours, never PyPI's).
	test ! -d $(VENV)/lib/python*/site-packages/tracker-0.1.0.dist-info || $(BIN)/python -m pip uninstall --quiet -y tracker
	@# setuptools warns that an editable install may be shadowed by a folder named like the package
	@# in the working directory; here that folder is the package itself, so the warning is noise.
	PYTHONWARNINGS='ignore:Editable installation' $(BIN)/python -m pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tracker demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check tracker tests bench migrations

typecheck: $(STAMP)
	$(BIN)/mypy --strict tracker

pytest: $(STAMP)
	$(BIN)/pytest -n 2 --dist loadfile

fuzz: $(STAMP)
	TRACKER_FUZZ_EXAMPLES=2000 $(BIN)/pytest -n 2 tests/test_differential.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

bench-quick: $(STAMP)
	$(BIN)/python bench/run.py --quick

# The dashboard's API latency at 10,000 and 1,000,000 trials, and optuna-dashboard's on 10,000.
bench-ui: $(STAMP)
	$(BIN)/python bench/ui.py

# Screenshots of the dashboard's pages into docs/images/ (needs Debian's chromium).
screenshots: $(STAMP)
	$(BIN)/python bench/screenshots.py

# The look-ahead check's power table; rewrites it in docs/optuna-and-ttpt.md (run from a clean tree).
power: $(STAMP)
	$(BIN)/python bench/power.py

# The overfitting status's calibration (noise) and power (one real edge); rewrites its table in docs/analysis.md.
overfit-power: $(STAMP)
	$(BIN)/python bench/overfit_power.py

clean:
	rm -rf $(VENV) bench/.venv bench/.venv-ui .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
