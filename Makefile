# Two commands set everything up on a fresh machine: `make run` (the demo) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPAT_VENV := .venv-compat
COMPAT_STAMP := $(COMPAT_VENV)/.installed
PYTEST_ENV := QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

.PHONY: venv run test compat bench bundle clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -c constraints.txt -e '.[test]'
	touch $@

run: venv
	$(BIN)/litdesk

# The whole suite, the layer contracts, then the import and loading checks on the oldest
# supported stack (numpy 1.26, pyarrow 24, scikit-learn 1.7).
test: venv
	$(BIN)/lint-imports
	$(PYTEST_ENV) $(BIN)/python -m pytest
	$(MAKE) compat

$(COMPAT_STAMP): pyproject.toml constraints-compat.txt
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install -c constraints-compat.txt -e '.[test]'
	touch $@

compat: $(COMPAT_STAMP)
	$(PYTEST_ENV) $(COMPAT_VENV)/bin/python -m pytest -m "not slow" tests/test_loaders.py tests/test_session.py tests/test_layers.py tests/test_table_query.py \
		tests/test_engine.py tests/test_lit_bridge.py tests/test_plugin_sklearn.py tests/test_plugin_linear_text.py \
		tests/test_baselines.py

bench: venv
	$(BIN)/python benchmarks/load_csv.py
	$(BIN)/python benchmarks/table.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m benchmarks.table_gui
	$(BIN)/python benchmarks/predict.py
	$(BIN)/python benchmarks/metrics.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python benchmarks/projector.py
	$(BIN)/python benchmarks/umap.py
	$(BIN)/python benchmarks/salience.py
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m benchmarks.responsiveness
	$(BIN)/python benchmarks/cache.py
	$(BIN)/python benchmarks/audit.py
	$(BIN)/python benchmarks/train.py --json

# The one-folder app, dist/litdesk/litdesk (PyInstaller, packaging/litdesk.spec): minutes, so not
# part of `make test`; once built, `make test` runs it headless too (tests/test_packaging.py).
bundle: venv
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test,bundle]'
	$(BIN)/pyinstaller --noconfirm --clean --log-level WARN --distpath dist \
		--workpath build/pyinstaller packaging/litdesk.spec
	@du -sh dist/litdesk

clean:
	rm -rf $(VENV) $(COMPAT_VENV) build dist
