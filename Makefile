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
	$(BIN)/python -m pip install --quiet -e ".[test,slurm]"
	touch $@

report: install
	$(BIN)/snakemake --profile workflow/profiles/default --cores $(CORES)
	$(BIN)/snakemake --profile workflow/profiles/default --cores $(CORES) --report results/report.zip

test: install
	$(BIN)/python -m pytest

# Parameter recovery of the primary model: the Snakemake workflow in workflow/validation/ (one job
# per batch of simulated datasets, 500 per scenario; it prints the bias and coverage per scenario),
# then the verdict (exit status 1 when a criterion fails). On a cluster:
#   make validate VALIDATE_PROFILE=workflow/profiles/slurm
# Other settings: make validate VALIDATE_ARGS="--config datasets=1000 batch_size=50".
VALIDATE_PROFILE ?= workflow/profiles/default
VALIDATE_ARGS ?=
validate: install
	$(BIN)/snakemake --snakefile workflow/validation/Snakefile --profile $(VALIDATE_PROFILE) --cores $(CORES) $(VALIDATE_ARGS)
	$(BIN)/python -m analysis.models.recovery --check results/validation/recovery.csv --quiet

benchmark: install
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_models.py
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_multiverse.py --demo --permutations 0 200

clean:
	rm -rf results/* data/processed/* logs .snakemake
	touch results/.gitkeep data/processed/.gitkeep
