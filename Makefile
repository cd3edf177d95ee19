# Two commands for a new user:  `make report` (whole pipeline on the demo data)  and  `make test`.
# Both create a virtual environment in .venv (Python 3.11+) and install the pinned dependencies.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: report test validate benchmark clean install

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

report: install
	$(BIN)/snakemake --profile workflow/profiles/default --cores $(CORES)
	$(BIN)/snakemake --profile workflow/profiles/default --cores $(CORES) --report results/report.zip

test: install
	$(BIN)/python -m pytest

validate: install
	$(BIN)/python -m analysis.models.recovery --datasets 200

benchmark: install
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_models.py

clean:
	rm -rf results/* data/processed/* logs .snakemake
	touch results/.gitkeep data/processed/.gitkeep
