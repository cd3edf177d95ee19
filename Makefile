# Two commands for a new user:  `make report` (whole pipeline on the demo data)  and  `make test`.
# Both create a virtual environment in .venv (Python 3.11+) and install the pinned dependencies.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: report test validate power benchmark clean install

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,slurm]"
	touch $@

report: install
	$(BIN)/snakemake --profile workflow/profiles/default --cores $(CORES)
	$(BIN)/snakemake --profile workflow/profiles/default --cores $(CORES) --report results/report.zip

# The tests on $(CORES) processes, each module's tests on one of them (tests/conftest.py);
# `pytest tests/test_x.py` runs one file alone.
test: install
	$(BIN)/python -m pytest -n $(CORES) --dist loadfile

# Parameter recovery of the primary dynamic panel model (DPM), with the conventional M2 beside it:
# the Snakemake workflow in workflow/validation/ (one job per batch of simulated datasets of one
# scenario; scenarios in analysis.simulate.dynamic, 2000 datasets each), then the gate: exit status
# 1, naming the scenario and criterion, when the DPM misses coverage, bias or type I error in a
# gated scenario. The committed table docs/validation/recovery.csv comes from such a run:
#   python -m analysis.simulate.recovery --check results/validation/recovery.csv \
#       --write-table docs/validation/recovery.csv --markdown
# On a cluster:
#   make validate VALIDATE_PROFILE=workflow/profiles/slurm
# Other settings: make validate VALIDATE_ARGS="--config datasets=1000 batch_size=50 seed=7".
VALIDATE_PROFILE ?= workflow/profiles/default
VALIDATE_ARGS ?=
validate: install
	$(BIN)/snakemake --snakefile workflow/validation/Snakefile --profile $(VALIDATE_PROFILE) --cores $(CORES) $(VALIDATE_ARGS)
	$(BIN)/python -m analysis.simulate.recovery --check results/validation/recovery.csv --quiet

# Power for the next study (METHODS 10; analysis.power): the pipeline's fits it reads, the
# generating parameters, one job per batch of simulated studies of a design and true effect, the
# power table (results/tables/power.csv, Wilson 95% Monte-Carlo CIs) and the power curve. The
# design grid, effects and number of simulated studies are the power keys of config/config.yaml;
# on a cluster: make power POWER_PROFILE=workflow/profiles/slurm
POWER_PROFILE ?= workflow/profiles/default
power: install
	$(BIN)/snakemake power --profile $(POWER_PROFILE) --cores $(CORES)

benchmark: install
	$(BIN)/python benchmarks/bench_ingest.py
	$(BIN)/python benchmarks/bench_models.py
	$(BIN)/python benchmarks/bench_dpm.py
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_multiverse.py --demo --permutations 0 200
	$(BIN)/python benchmarks/bench_engagement.py

clean:
	rm -rf results/* data/processed/* logs .snakemake
	touch results/.gitkeep data/processed/.gitkeep
