# Two commands on a fresh clone: `make suite` and `make test`. Each sets up .venv itself.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# The pinned torch takes the CPU wheel on machines that keep it on disk. Elsewhere pass
# PIP_TORCH_ARGS (for example your CPU wheel index) or TORCH_SPEC to choose another build.
TORCH_SPEC ?= torch==2.13.0
PIP_TORCH_ARGS ?=
KERNEL := rlcompare
PROFILE ?= default
# pytest-xdist workers for `make test`: most tests keep one core busy, so one per core here.
TEST_WORKERS ?= 2

.PHONY: venv browser tex test suite lint bench lab clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[dev,ray]"
	# jsonschema imports rfc3987-syntax for its optional "iri" format when it is installed, and
	# that builds ~35 Lark grammars: ~3 s of CPU in every Ray process, which on a busy machine
	# outlasts the 15 s a raylet waits for its dashboard agent (Ray start-up times out, measured
	# 0 of 4 starts at load 13-21; 2 of 2 without it). Nothing here validates IRIs.
	$(BIN)/python -m pip uninstall --quiet --yes rfc3987-syntax
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "rlcompare (.venv)" >/dev/null
	touch $@

venv: $(BIN)/.installed

# The HTML report is checked in a real headless browser: Debian's chromium, installed where
# missing and apt-get can (as root); elsewhere the browser test skips outside CI.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium not installed: the report's browser test skips outside CI"

# The report card's LaTeX appendix is compiled by a test: Debian's TeX Live (pdflatex, booktabs,
# graphicx), installed where missing and apt-get can (as root); elsewhere that test skips
# outside CI.
tex:
	@command -v pdflatex >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		texlive-latex-base texlive-latex-recommended texlive-fonts-recommended >/dev/null; } \
		|| echo "pdflatex not installed: the card's LaTeX test skips outside CI"

test: venv browser tex
	$(BIN)/ruff check rlcompare tests benchmarks notebooks examples
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

suite: venv
	$(BIN)/rlcompare suite --profile $(PROFILE)

lint: venv
	$(BIN)/ruff check rlcompare tests benchmarks notebooks examples
	$(BIN)/ruff format --check rlcompare tests benchmarks

bench: venv
	for script in benchmarks/*.py; do $(BIN)/python $$script || exit 1; done

lab: venv
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf $(VENV) data/executed .pytest_cache
