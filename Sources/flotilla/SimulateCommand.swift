import ArgumentParser
import Foundation
import Manifest
import Raft
import Simulation

/// `flotilla simulate`: runs the deterministic cluster simulator over many seeds.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the deterministic Raft simulator over many seeds and check safety and liveness.",
        discussion: """
            Each seed is one simulated cluster run: messages delayed, dropped, duplicated and \
            reordered; partitions; crashes and restarts; membership changes and leadership \
            transfers; clients proposing and reading throughout. Every step is checked for \
            election safety, leader append-only, log matching, leader completeness, state-machine \
            safety and linearizable reads; after faults stop, a leader must emerge and a new \
            proposal commit on every voter. The same seed always replays the same run.

            The last line reads `seeds: N, violations: V`; the exit status is 1 if V > 0.
            Replay one seed with its trace: flotilla simulate --seed 42 --nodes 5

            With --manifest, each seed also runs the task manifest, the scheduler and simulated \
            agents that crash and stall, with clients submitting tasks, and checks that no task \
            is recorded succeeded twice, that stale reports are fenced off, that a dead agent's \
            tasks are re-queued, that every node's manifest agrees, that idempotent submissions \
            return the same tasks, and that every acknowledged task reaches a terminal state once \
            faults stop. (--spare-nodes and --no-reconfiguration do not apply there.)
            """
    )

    @Option(help: "How many seeds to run.")
    var seeds: UInt64 = 1000

    @Option(help: "The first seed of the range.")
    var firstSeed: UInt64 = 1

    @Option(help: "Replay this one seed and print its trace (overrides --seeds).")
    var seed: UInt64?

    @Option(help: "Founding voters per cluster (3, 5 or 7 are typical; 1...9).")
    var nodes: Int = 5

    @Option(help: "Extra empty nodes that membership changes may add.")
    var spareNodes: Int = 2

    @Option(help: "Simulated milliseconds of fault injection per seed.")
    var faultMs: UInt64 = 4_000

    @Option(help: "Simulated milliseconds allowed, after faults stop, for a leader to commit on every voter.")
    var livenessMs: UInt64 = 10_000

    @Flag(help: "Run without crashes, partitions or message faults.")
    var noFaults = false

    @Flag(help: "Run without membership changes or leadership transfers.")
    var noReconfiguration = false

    @Option(help: ArgumentHelp(
        "Keep each node's log in the real durable store under this folder, and crash nodes in the middle of fsyncs.",
        discussion: "Checks the store's crash recovery together with the protocol; real fsyncs make it much slower."))
    var durableDir: String?

    @Option(help: "Events of the trace printed for a failing seed.")
    var traceLength: Int = 200

    @Option(help: "Parallel jobs (default: the number of cores).")
    var jobs: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(
        help: ArgumentHelp(
            "Break the core on purpose, to see the checkers catch it: \(InjectedBug.allCases.map(\.rawValue).joined(separator: ", ")).",
            visibility: .hidden))
    var injectBug: [String] = []

    @Flag(help: "Simulate the task manifest, scheduler and agents on the cluster (crashing, stalling agents) instead of Raft alone.")
    var manifest = false

    @Option(
        help: ArgumentHelp(
            "With --manifest: model a flaw of today's control plane that the simulator found: \(ControlPlaneFlaw.allCases.map(\.rawValue).joined(separator: ", ")).",
            visibility: .hidden))
    var modelFlaw: [String] = []

    @Option(
        help: ArgumentHelp(
            "With --manifest: skip a check, to see which other check catches an injected bug: \(ManifestViolation.Property.allCases.map(\.rawValue).joined(separator: ", ")).",
            visibility: .hidden))
    var disableCheck: [String] = []

    @Flag(help: "Print only the summary line and failures.")
    var quiet = false

    func validate() throws {
        try checkRange(seeds, "--seeds", 1...1_000_000_000)
        try checkRange(nodes, "--nodes", 1...9)
        try checkRange(spareNodes, "--spare-nodes", 0...4)
        // Simulated time is counted in microseconds; an hour of each keeps every sum far from overflowing.
        try checkRange(faultMs, "--fault-ms", 0...3_600_000)
        try checkRange(livenessMs, "--liveness-ms", 1_000...3_600_000)
        // The trace is a ring buffer of this many events, allocated up front for a replayed seed.
        try checkRange(traceLength, "--trace-length", 0...1_000_000)
        try checkRange(jobs, "--jobs", 1...max(1024, ProcessInfo.processInfo.activeProcessorCount))
        if firstSeed > UInt64.max - seeds {
            throw ValidationError("--first-seed + --seeds must be at most \(UInt64.max), not \(firstSeed) + \(seeds)")
        }
        if manifest {
            for name in injectBug { try checkChoice(name, "--inject-bug (with --manifest)", ManifestBug.allCases.map(\.rawValue)) }
            if durableDir != nil { throw ValidationError("--durable-dir does not apply to --manifest") }
            for name in disableCheck { try checkChoice(name, "--disable-check", ManifestViolation.Property.allCases.map(\.rawValue)) }
            for name in modelFlaw { try checkChoice(name, "--model-flaw", ControlPlaneFlaw.allCases.map(\.rawValue)) }
            do { try manifestOptions.validate() } catch { throw ValidationError(error.description) }
            return
        }
        for name in injectBug { try checkChoice(name, "--inject-bug", InjectedBug.allCases.map(\.rawValue)) }
        do { try options.validate() } catch { throw ValidationError(error.description) }
    }

    var manifestOptions: ManifestSimulationOptions {
        var o = ManifestSimulationOptions(nodes: nodes)
        o.faultMilliseconds = faultMs
        o.livenessMilliseconds = livenessMs
        o.faults = !noFaults
        o.traceLength = traceLength
        o.injectedBugs = Set(injectBug.compactMap(ManifestBug.init(rawValue:)))
        o.flaws = Set(modelFlaw.compactMap(ControlPlaneFlaw.init(rawValue:)))
        o.disabledChecks = Set(disableCheck.compactMap(ManifestViolation.Property.init(rawValue:)))
        return o
    }

    var options: SimulationOptions {
        var o = SimulationOptions(nodes: nodes)
        o.spareNodes = spareNodes
        o.faultMilliseconds = faultMs
        o.livenessMilliseconds = livenessMs
        o.faults = !noFaults
        o.reconfiguration = !noReconfiguration
        o.traceLength = traceLength
        o.durableDirectory = durableDir.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        o.injectedBugs = Set(injectBug.compactMap(InjectedBug.init(rawValue:)))
        return o
    }

    func run() async throws {
        if manifest { return try await runManifest() }
        let options = self.options
        if let seed {
            let result = Simulator(seed: seed, options: options).run()
            for line in result.trace { print(line) }
            report(result)
            print(statsLine(result.stats))
            print("seeds: 1, violations: \(result.violation == nil ? 0 : 1)")
            if result.violation != nil { throw ExitCode(1) }
            return
        }
        let started = Date()
        let total = seeds
        let interactive = isatty(STDERR_FILENO) == 1 && !quiet
        let summary = await SimulationRunner.run(
            seeds: firstSeed..<(firstSeed + seeds), options: options, jobs: jobs
        ) { done, failures in
            guard interactive else { return }
            let line = "\r\(done)/\(total) seeds, \(failures) violations"
            FileHandle.standardError.write(Data(line.utf8))
        }
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
        for failure in summary.failures {
            print("--- seed \(failure.seed): last \(failure.trace.count) events")
            for line in failure.trace { print(line) }
            report(failure)
        }
        if !quiet {
            let seconds = Date().timeIntervalSince(started)
            print(statsLine(summary.stats))
            print(String(format: "%.1f s, %.0f seeds/s, %d nodes (+%d spare), %d jobs", seconds, Double(summary.seedsRun) / seconds, nodes, spareNodes, jobs))
        }
        print("seeds: \(summary.seedsRun), violations: \(summary.violations)")
        if summary.violations > 0 { throw ExitCode(1) }
    }

    private func runManifest() async throws {
        let options = manifestOptions
        if let seed {
            let result = ManifestSimulator(seed: seed, options: options).run()
            for line in result.trace { print(line) }
            report(result)
            print(manifestStatsLine(result.stats))
            print("fingerprint: \(String(result.fingerprint, radix: 16))")
            print("seeds: 1, violations: \(result.violation == nil ? 0 : 1)")
            if result.violation != nil { throw ExitCode(1) }
            return
        }
        let started = Date()
        let total = seeds
        let interactive = isatty(STDERR_FILENO) == 1 && !quiet
        let summary = await ManifestSimulationRunner.run(
            seeds: firstSeed..<(firstSeed + seeds), options: options, jobs: jobs
        ) { done, failures in
            guard interactive else { return }
            FileHandle.standardError.write(Data("\r\(done)/\(total) seeds, \(failures) violations".utf8))
        }
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
        for failure in summary.failures {
            print("--- seed \(failure.seed): last \(failure.trace.count) events")
            for line in failure.trace { print(line) }
            report(failure)
        }
        if !quiet {
            let seconds = Date().timeIntervalSince(started)
            print(manifestStatsLine(summary.stats))
            print(String(format: "%.1f s, %.1f seeds/s, %d nodes, %d jobs", seconds, Double(summary.seedsRun) / seconds, nodes, jobs))
        }
        print("seeds: \(summary.seedsRun), violations: \(summary.violations)")
        if summary.violations > 0 { throw ExitCode(1) }
    }

    private func report(_ r: ManifestSimulationResult) {
        guard let v = r.violation else { return }
        print("VIOLATION in seed \(r.seed): \(v)")
        print("replay: \(replayCommand(seed: r.seed))")
    }

    private func manifestStatsLine(_ s: ManifestSimulationStats) -> String {
        let requeue = s.meanRequeueMillis.map { String(format: "%.0f ms", $0) } ?? "n/a"
        return "tasks submitted \(s.tasksSubmitted) (succeeded \(s.tasksSucceeded), failed \(s.tasksFailed), poison \(s.poisonTasks)), "
            + "submissions \(s.submissions) (acknowledged \(s.submissionsAcknowledged), idempotent replays \(s.idempotentReplays)), "
            + "assignments \(s.assignments), reports recorded \(s.reportsRecorded), stale reports refused \(s.staleReportsRefused), "
            + "attempts abandoned \(s.attemptsAbandoned), agent crashes \(s.agentCrashes), stalls \(s.agentStalls) (longer than deadAfter \(s.longStalls)), "
            + "agents declared dead \(s.agentsDeclaredDead), agent re-joins \(s.agentRejoins), "
            + "tasks re-queued and re-assigned \(s.requeues) (mean \(requeue) from death to re-assignment), "
            + "node crashes \(s.nodeCrashes), partitions \(s.partitions) (agent links \(s.agentPartitions)), leaders \(s.leadersElected), "
            + "snapshots installed \(s.snapshotsInstalled), events \(s.events), messages \(s.messagesSent) (dropped \(s.messagesDropped))"
    }

    private func report(_ r: SimulationResult) {
        guard let v = r.violation else { return }
        print("VIOLATION in seed \(r.seed): \(v)")
        print("replay: \(replayCommand(seed: r.seed))")
    }

    private func replayCommand(seed: UInt64) -> String {
        var parts = ["flotilla simulate\(manifest ? " --manifest" : "") --seed \(seed) --nodes \(nodes)"]
        if spareNodes != 2 && !manifest { parts.append("--spare-nodes \(spareNodes)") }
        if faultMs != 4_000 { parts.append("--fault-ms \(faultMs)") }
        if livenessMs != 10_000 { parts.append("--liveness-ms \(livenessMs)") }
        if noFaults { parts.append("--no-faults") }
        if noReconfiguration && !manifest { parts.append("--no-reconfiguration") }
        if let durableDir { parts.append("--durable-dir \(durableDir)") }
        for b in injectBug { parts.append("--inject-bug \(b)") }
        if manifest {
            for f in modelFlaw { parts.append("--model-flaw \(f)") }
            for c in disableCheck { parts.append("--disable-check \(c)") }
        }
        return parts.joined(separator: " ")
    }

    private func statsLine(_ s: SimulationStats) -> String {
        "events \(s.events), messages \(s.messagesSent) (dropped \(s.messagesDropped), duplicated \(s.messagesDuplicated)), "
            + "proposals \(s.proposals) (acknowledged \(s.proposalsAcknowledged)), reads \(s.readsServed), "
            + "leaders \(s.leadersElected), crashes \(s.crashes), partitions \(s.partitions), "
            + "snapshots installed \(s.snapshotsInstalled), crashes during fsync \(s.crashesDuringSync), membership changes \(s.configurationChanges), "
            + "transfers \(s.leadershipTransfers), max term \(s.maxTerm)"
    }
}
