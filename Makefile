# Flotilla: the two commands of README.md, and a few more.
SWIFT ?= swift
SEEDS ?= 1000
NODES ?= 5

.PHONY: demo test build release simulate simulate-all bench chaos bench-core clean

## demo: install what is missing, build in release mode, run bench's quick pass on a local cluster
## (every phase, a few minutes on 2 cores): results/, plots/, results/report.md
demo: release
	.build/release/bench all --quick

## bench: the full bench run (tens of minutes on 2 cores)
bench: release
	.build/release/bench all

## chaos: the eight fault scenarios on real processes, every client operation checked (minutes)
chaos: release
	.build/release/bench chaos --scenario all --quick

## test: the whole test suite (what CI runs), in three runs of one build. Swift Testing runs the
## suites of a run in parallel on one thread per core; the suites that drive real processes or
## give gRPC calls a budget run apart from the CPU-bound ones (simulators, kernels, statistics),
## which would otherwise starve them; the chaos scenarios (5 nodes, 3 agents and a load each) run
## last, alone.
PROCESS_SUITES = ProcessClusterTests|AgentProcessTests|BenchProcessTests|ClusterClientTests
test:
	scripts/install-deps.sh
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip '$(PROCESS_SUITES)|ChaosProcessTests'
	$(SWIFT) test --skip-build --filter '$(PROCESS_SUITES)'
	$(SWIFT) test --skip-build --filter ChaosProcessTests

build:
	scripts/install-deps.sh
	$(SWIFT) build

release:
	scripts/install-deps.sh
	$(SWIFT) build -c release --product flotilla
	$(SWIFT) build -c release --product bench

## simulate: SEEDS seeds on NODES nodes, release build
simulate: release
	.build/release/flotilla simulate --seeds $(SEEDS) --nodes $(NODES)

## simulate-all: the long run recorded in docs/testing.md (100,000 seeds over 3, 5 and 7 nodes)
simulate-all: release
	.build/release/flotilla simulate --seeds 40000 --nodes 3 --quiet
	.build/release/flotilla simulate --seeds 40000 --first-seed 40001 --nodes 5 --quiet
	.build/release/flotilla simulate --seeds 20000 --first-seed 80001 --nodes 7 --quiet

## bench-core: the core's micro-benchmarks (ordo-one/benchmark, nested package)
bench-core:
	cd Benchmarks && $(SWIFT) package --disable-sandbox benchmark

clean:
	rm -rf .build Benchmarks/.build
