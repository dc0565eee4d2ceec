# keepwell: `make demo` runs the nightly job on the shipped fixtures; `make test` runs the tests.
#
# The default build links the official prebuilt libduckdb 1.5.6, which DuckDB publishes in the
# npm package below; it is fetched once into .duckdb/ (ignored by git). The binary finds it
# through an rpath, so LD_LIBRARY_PATH is never needed. `cargo build --features bundled`
# compiles DuckDB from source instead (about two hours on 2 cores).

DUCKDB_VERSION := 1.5.6
DUCKDB_NPM     := @duckdb/node-bindings-linux-x64@$(DUCKDB_VERSION)-r.1
DUCKDB_DIR     := $(CURDIR)/.duckdb/$(DUCKDB_VERSION)
DUCKDB_LIB     := $(DUCKDB_DIR)/libduckdb.so
export DUCKDB_LIB_DIR := $(DUCKDB_DIR)

CARGO ?= cargo
# The fixtures end on this day; running the demo as of it keeps every story in the data.
AS_OF ?= 2026-11-23

.PHONY: demo history screenshot bench test lint build duckdb fixtures clean-demo smtp-server scikit-learn jsonschema spark

# The fixtures hold this many days of history before AS_OF, and the renewals and churns of
# its last 203 days (fixtures/outcomes.csv).
HISTORY_DAYS := 301
# Every Monday of that history is run first without mail, so the report has a history to
# chart and `keepwell validate` grades from 90 days before each outcome.
HISTORY ?= $(shell for w in $$(seq 43 -1 1); do date -d "$(AS_OF) - $$((w * 7)) days" +%F; done)

# The demo runs on the same (debug) build as `make test`, so a fresh machine compiles once:
# the warehouse work is in the prebuilt libduckdb either way, and the demo's 500 accounts
# take seconds. `make build` makes the optimised binary to deploy; `make bench` uses it.
demo: history
	$(CARGO) run --quiet -- run nightly --as-of $(AS_OF)
	$(CARGO) run --quiet -- validate nightly

history: $(DUCKDB_LIB)
	$(CARGO) build --quiet
	$(CARGO) run --quiet -- check
	@for day in $(HISTORY); do $(CARGO) run --quiet -- run nightly --as-of $$day --no-mail --quiet || exit 1; done

# The README's picture of the executive report: the demo's report for AS_OF, previewed on a
# fresh store with the same history and photographed by headless Chromium (Debian's
# `chromium` package).
screenshot: clean-demo history
	$(CARGO) run --quiet -- preview nightly --as-of $(AS_OF) --out .keepwell/screenshot
	mkdir -p docs/images
	chromium --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars \
	  --force-device-scale-factor=1 --window-size=820,2000 \
	  --screenshot=$(CURDIR)/docs/images/executive-report.png \
	  "file://$(CURDIR)/.keepwell/screenshot/summary--cs-leadership@example.com.html"

test: $(DUCKDB_LIB) smtp-server scikit-learn jsonschema spark
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings
	$(CARGO) test
	$(CARGO) run --quiet -- check
	$(CARGO) run --quiet -- test --strict

# The benchmark (BENCHMARKS.md): the nightly job at 100k and 1M accounts against the
# hand-written DuckDB SQL and pandas baselines. BENCH_SIZES=100000 for a quicker run.
BENCH_SIZES ?= 100000,1000000
bench: $(DUCKDB_LIB)
	@python3 -c "import pandas, pyarrow" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pandas pyarrow
	python3 benches/bench.py --sizes $(BENCH_SIZES) --write

# The SMTP tests talk to a real server on loopback: Python's aiosmtpd, from PyPI.
smtp-server:
	@python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check aiosmtpd

# The validation test checks the AUC and the Wilson intervals against scikit-learn and SciPy.
scikit-learn:
	@python3 -c 'import sklearn, scipy' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check scikit-learn

# The alert tests check every webhook body against docs/schemas/webhook.schema.json.
jsonschema:
	@python3 -c 'import jsonschema' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check jsonschema

# The scale-out test runs the compiled job on a real Spark in local mode: PySpark from PyPI
# and a Java runtime from Debian. Where either cannot be installed the test says it skipped.
PYSPARK_VERSION ?= 4.0.1
spark:
	@command -v java >/dev/null 2>&1 || (apt-get install -y -qq openjdk-17-jre-headless >/dev/null 2>&1 \
	  || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq openjdk-17-jre-headless >/dev/null 2>&1)) \
	  || echo "no Java runtime could be installed: the Spark test will be skipped"
	@python3 -c 'import pyspark' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyspark==$(PYSPARK_VERSION) \
	  || echo "PySpark could not be installed: the Spark test will be skipped"

build: $(DUCKDB_LIB)
	$(CARGO) build --release

duckdb: $(DUCKDB_LIB)

$(DUCKDB_LIB):
	@echo "fetching libduckdb $(DUCKDB_VERSION) from npm ($(DUCKDB_NPM))"
	@mkdir -p $(DUCKDB_DIR)
	@tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent $(DUCKDB_NPM) >/dev/null \
		&& tar xzf *.tgz && cp package/libduckdb.so $(DUCKDB_DIR)/ && cd / && rm -rf $$tmp
	@test -f $(DUCKDB_LIB)

# Regenerates the shipped fixtures (deterministic: same seed, same files).
fixtures: $(DUCKDB_LIB)
	$(CARGO) run --release --quiet -- demo-data --accounts 500 --seed 7 --as-of $(AS_OF) --history-days $(HISTORY_DAYS) --out fixtures

clean-demo:
	rm -rf .keepwell
