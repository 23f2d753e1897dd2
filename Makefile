# The two commands of the README: `make run` (main job) and `make test` (all tests).
PYTHON ?= python3
PIP_INSTALL = $(PYTHON) -m pip install -q -r requirements.txt -e .
DGN_NOTEBOOKS = dgn_classification dgn_regression

.PHONY: install run test test-unit test-notebooks nbval benchmark

install:
	$(PIP_INSTALL)

# Main job: execute both DGN notebooks with papermill, print their epoch logs, check them.
run: install
	$(PYTHON) ci/run_notebooks.py $(DGN_NOTEBOOKS)

# Everything CI runs: unit tests, every notebook against expected_outputs/, nbval over the runs.
test: install
	$(PYTHON) ci/run_notebooks.py
	$(PYTHON) -m pytest --nbval-lax ci/out -p no:randomly -q
	$(PYTHON) -m pytest tests -q

test-unit:
	$(PYTHON) -m pytest tests -q

benchmark: install
	$(PYTHON) benchmarks/bench_dgn.py
