# Flotilla: the two commands of README.md, and a few more.
SWIFT ?= swift
SEEDS ?= 1000
NODES ?= 5

.PHONY: demo test build release simulate simulate-all bench chaos bench-core fuzz fuzz-build fuzz-short clean

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
## Last, each fuzz target runs $(FUZZ_SHORT) s under libFuzzer from its corpus (a finding fails).
PROCESS_SUITES = ProcessClusterTests|AgentProcessTests|BenchProcessTests|ClusterClientTests|CLIValidationTests
FUZZ_SHORT ?= 15
test:
	scripts/install-deps.sh
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip '$(PROCESS_SUITES)|ChaosProcessTests'
	$(SWIFT) test --skip-build --filter '$(PROCESS_SUITES)'
	$(SWIFT) test --skip-build --filter ChaosProcessTests
	$(MAKE) fuzz-short

## fuzz-build: flotilla-fuzz with libFuzzer and AddressSanitizer, in its own build folder. The
## Swift flag names both sanitizers at once: given as two flags, the Swift driver keeps only the
## last, and the Swift code would carry no coverage counters (libFuzzer would fuzz blind).
fuzz-build:
	$(SWIFT) build --product flotilla-fuzz --scratch-path .build-fuzz --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING

## fuzz-short: every fuzz target for FUZZ_SHORT seconds (what make test runs)
fuzz-short: fuzz-build
	scripts/fuzz.sh $(FUZZ_SHORT)

## fuzz: every fuzz target for FUZZ_SECONDS (default 10 minutes) each, adding what it finds to
## Fuzz/corpus; a crash is kept in Fuzz/crashes/TARGET (docs/testing.md)
FUZZ_SECONDS ?= 600
fuzz: fuzz-build
	FUZZ_GROW=1 scripts/fuzz.sh $(FUZZ_SECONDS)

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
	rm -rf .build .build-fuzz Benchmarks/.build
