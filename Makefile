# Every target that needs Python creates .venv first; nothing depends on a hand install.
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORPUS ?= ../shared/data/fra-eng.tsv

.PHONY: install test test-avx2 lint docs demo bench bench-quality bench-workflow bench-soak data clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The CPU build of PyTorch first, so the package's torch requirement is already met.
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev,plot,export,tensorboard,serve,tune,postgres]"
	touch $(STAMP)

# One pytest worker per core (pytest-xdist): most tests are single-threaded, and those that
# wait on processes or a clock leave a core idle; on 2 cores the suite takes two thirds of
# its serial time. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= auto
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# The numerics-sensitive tests again with PyTorch, oneDNN and MKL limited to AVX2, as on a
# CPU without AVX-512 (most laptops and cloud VMs): results must hold on both.
AVX2_ONLY := ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
test-avx2: $(STAMP)
	$(AVX2_ONLY) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) -m numerics

lint: $(STAMP)
	$(BIN)/ruff check .

# The config reference (docs/config.md), generated from seq2seq_cli/config/schema.py.
docs: $(STAMP)
	$(BIN)/seq2seq config reference --write docs/config.md

# Each demo run gets its own directory, so an earlier one is never replaced.
demo: $(STAMP)
	$(BIN)/seq2seq train configs/dates.yaml --run-dir runs/dates-$$(date +%Y%m%d-%H%M%S)

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py --corpus $(CORPUS)

# Quality per minute of CPU of the model options (about 40 minutes; benchmarks/quality.md).
bench-quality: $(STAMP)
	$(BIN)/python benchmarks/quality.py --corpus $(CORPUS)

# Fine-tuning against training from scratch, checkpoint averaging (benchmarks/workflow.md).
bench-workflow: $(STAMP)
	$(BIN)/python benchmarks/workflow.py --corpus $(CORPUS)

# Five minutes of valid and hostile requests against `seq2seq serve`: memory, errors, uptime.
bench-soak: $(STAMP)
	$(BIN)/python benchmarks/serve.py --soak 300

data:
	$(PYTHON) data/make_dates.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
