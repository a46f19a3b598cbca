import ArgumentParser
import BenchStatistics
import BenchStore
import Foundation
import Kernels

/// `bench`: what fault-tolerant orchestration costs, measured on a real local cluster.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure what orchestration costs (baseline, overhead, scaling, failover) and what faults cost (chaos) on a local cluster.",
        discussion: """
            Every phase starts its own cluster of `flotilla node` and `flotilla agent` processes on \
            127.0.0.1 (nothing to configure), measures, stores every raw sample in SQLite, and writes \
            a CSV under results/ and charts under plots/. Start with `bench all --quick`. \
            `bench chaos` injects faults into such a cluster under load and checks every client \
            operation (docs/fault-tolerance.md).
            """,
        subcommands: [PhaseCommand.self, AllCommand.self, ListCommand.self, ShowCommand.self, ExportCommand.self,
                      ReportCommand.self, CompareCommand.self, TagCommand.self, ChaosCommand.self])
}

/// Where a measuring command stores its run, and how it runs its clusters: every measuring
/// command takes these (`bench chaos` only these).
struct OutputOptions: ParsableArguments {
    @Option(help: "The SQLite run store.")
    var db = "results/flotilla-bench.sqlite"

    @Option(help: "Where CSVs and reports go.")
    var results = "results"

    @Option(help: "Where charts (.gp, .dat, .png, .svg) go.")
    var plots = "plots"

    @Flag(help: "A short run (minutes on 2 cores): fewer sizes, repetitions and trials.")
    var quick = false

    @Option(help: "A name for the run, usable wherever a run id is (e.g. in compare).")
    var tag: String?

    @Flag(help: "Print a JSON summary on standard output (progress still goes to standard error).")
    var json = false

    @Flag(help: "Keep each phase's cluster folder (config, data, logs) instead of deleting it.")
    var keepCluster = false

    @Option(help: "Where the phases' clusters live while they run.")
    var workDir = "results/clusters"
}

/// Options every phase takes: the outputs, and how many repetitions it measures.
struct CommonOptions: ParsableArguments {
    @OptionGroup var output: OutputOptions

    @Option(help: "Measured repetitions of each point (after warm-up).")
    var `repeat`: Int?

    @Option(help: "Warm-up repetitions, stored but excluded from statistics.")
    var warmup: Int?

    @Option(help: ArgumentHelp("For demonstrating compare: milliseconds every agent adds to each task.", visibility: .hidden))
    var injectAgentDelayMs = 0

    /// These options with their defaults around `output` (for commands that take only those).
    static func defaults(output: OutputOptions) throws -> CommonOptions {
        var common = try CommonOptions.parse([])
        common.output = output
        return common
    }

    var db: String { output.db }
    var results: String { output.results }
    var plots: String { output.plots }
    var quick: Bool { output.quick }
    var tag: String? { output.tag }
    var json: Bool { output.json }
    var keepCluster: Bool { output.keepCluster }
    var workDir: String { output.workDir }

    func validate() throws {
        try checkRange(`repeat`, "--repeat", 1...1000)
        try checkRange(warmup, "--warmup", 0...100)
        try checkRange(injectAgentDelayMs, "--inject-agent-delay-ms", 0...3_600_000)
    }

    var repeats: Int { `repeat` ?? (quick ? 3 : 5) }
    var warmups: Int { warmup ?? 1 }

    func context(_ progress: Progress) -> PhaseContext {
        PhaseContext(
            repeats: repeats, warmups: warmups, quick: quick, workDirectory: workDir, progress: progress, keepCluster: keepCluster,
            agentArguments: injectAgentDelayMs > 0 ? ["--inject-delay-ms", String(injectAgentDelayMs)] : [])
    }
}

/// OpenBLAS chooses its kernel when it loads: restart with the right `OPENBLAS_CORETYPE` if it
/// fell back to a generic one (the baseline measures this process's kernel).
func prepareKernel(_ progress: Progress) {
    OpenBLAS.reexecWithRecommendedCoreTypeIfNeeded { progress.line($0) }
}

/// `bench phase <name>`.
struct PhaseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "phase", abstract: "Run one phase.",
        subcommands: [Baseline.self, Overhead.self, Scaling.self, Failover.self])

    struct Baseline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "GFLOP/s of the kernel without orchestration, per size and BLAS thread count, against the machine's peak.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Matrix sizes (default 1000,2000,4096,8192; quick 500,1000,2000).") var size: String?
        @Option(help: "BLAS thread counts (default 1 and the core count).") var threads: String?
        @Option(help: "float32 or float64.") var precision = "float32"

        func validate() throws {
            _ = try sizes()
            _ = try threadList()
            _ = try prec()
        }

        func run() async throws { _ = try await perform(Progress(quiet: false)) }

        /// Runs the phase with these options (defaults resolved here only; `bench all` calls it too).
        func perform(_ progress: Progress) async throws -> Int64 {
            try await execute(phase: "baseline", common: common, progress: progress, parameters: parameters()) { context in
                runBaseline(sizes: try sizes(), threads: try threadList(), precision: try prec(), context: context)
            }
        }

        func sizes() throws -> [Int] { try parseList(size ?? (common.quick ? "500,1000,2000" : "1000,2000,4096,8192"), "size", range: matrixSizes) }
        func threadList() throws -> [Int] {
            try threads.map { try parseList($0, "threads", range: 1...1024) } ?? Array(Set([1, CPUInfo.logicalCores])).sorted()
        }
        func prec() throws -> Precision {
            try checkChoice(precision, "--precision", Precision.allCases.map(\.rawValue))
            return Precision(rawValue: precision)!
        }
        func parameters() throws -> [String: String] {
            ["sizes": try sizes().map(String.init).joined(separator: ","), "threads": try threadList().map(String.init).joined(separator: ","),
             "precision": precision, "repeat": String(common.repeats), "warmup": String(common.warmups)]
        }
    }

    struct Overhead: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The cost of going through the cluster: per-task latencies and overhead vs compute, per size; submission latency under a stream.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Control-plane nodes (default 5; quick 3).") var nodes: Int?
        @Option(help: "Matrix sizes (default 512,1024,2048,4096; quick 256,1024,2048).") var size: String?
        @Option(help: "Small submissions in the latency stream (default 2000; quick 400).") var stream: Int?
        @Option(help: "Concurrent clients of the stream.") var clients = 4

        func validate() throws {
            try checkRange(nodes, "--nodes", localClusterNodes)
            _ = try sizeList()
            try checkRange(stream, "--stream", 1...1_000_000)
            // Each client takes every clients-th submission of the stream.
            try checkRange(clients, "--clients", 1...1024)
        }

        func sizeList() throws -> [Int] {
            try parseList(size ?? (common.quick ? "256,1024,2048" : "512,1024,2048,4096"), "size", range: matrixSizes)
        }

        func run() async throws { _ = try await perform(Progress(quiet: false)) }

        func perform(_ progress: Progress) async throws -> Int64 {
            let n = nodes ?? (common.quick ? 3 : 5)
            let sizes = try sizeList()
            let count = stream ?? (common.quick ? 400 : 2000)
            let parameters = ["nodes": String(n), "sizes": sizes.map(String.init).joined(separator: ","), "stream": String(count),
                              "clients": String(clients), "repeat": String(common.repeats), "warmup": String(common.warmups)]
            return try await execute(phase: "overhead", common: common, progress: progress, parameters: parameters) { context in
                try await runOverhead(nodes: n, sizes: sizes, stream: count, streamClients: clients, context: context)
            }
        }
    }

    struct Scaling: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Throughput, speedup and efficiency with 1..N agents; points with more busy agents than cores are marked.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Control-plane nodes (default 5; quick 3).") var nodes: Int?
        @Option(help: "Agent counts (default 1,2,3,4,5; quick 1,2,3).") var agents: String?
        @Option(help: "Matrix size (default 4096; quick 1024).") var size: Int?
        @Option(help: "Tasks per agent in each round.") var tasksPerAgent = 4

        func validate() throws {
            try checkRange(nodes, "--nodes", localClusterNodes)
            _ = try agentCounts()
            try checkRange(size, "--size", matrixSizes)
            try checkRange(tasksPerAgent, "--tasks-per-agent", 1...1000)
        }

        func agentCounts() throws -> [Int] { try parseList(agents ?? (common.quick ? "1,2,3" : "1,2,3,4,5"), "agents", range: 1...64) }

        func run() async throws { _ = try await perform(Progress(quiet: false)) }

        func perform(_ progress: Progress) async throws -> Int64 {
            let n = nodes ?? (common.quick ? 3 : 5)
            let counts = try agentCounts()
            let s = size ?? (common.quick ? 1024 : 4096)
            let parameters = ["nodes": String(n), "agents": counts.map(String.init).joined(separator: ","), "size": String(s),
                              "tasks_per_agent": String(tasksPerAgent), "repeat": String(common.repeats), "warmup": String(common.warmups)]
            return try await execute(phase: "scaling", common: common, progress: progress, parameters: parameters) { context in
                try await runScaling(nodes: n, agentCounts: counts, size: s, tasksPerAgent: tasksPerAgent, context: context)
            }
        }
    }

    struct Failover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "SIGKILL the leader (or an agent) under load; time to a new leader, first commit, recovery; count lost and duplicated tasks.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Control-plane nodes (default 5; quick 3).") var nodes: Int?
        @Option(help: "Agents running the load.") var agents = 2
        @Option(help: "Kills (default 10; quick 3).") var trials: Int?
        @Option(help: "Matrix size of the load (default 2000; quick 512).") var size: Int?
        @Option(help: "What to kill: leader or agent.") var victim = "leader"

        func validate() throws {
            try checkChoice(victim, "--victim", FailoverVictim.allCases.map(\.rawValue))
            if victim == FailoverVictim.leader.rawValue {
                try checkRange(nodes, "--nodes", 3...localClusterNodes.upperBound, why: "with --victim leader, a majority must survive the kill")
            } else {
                try checkRange(nodes, "--nodes", localClusterNodes)
            }
            if victim == FailoverVictim.agent.rawValue {
                try checkRange(agents, "--agents", 2...64, why: "with --victim agent, another agent must finish the load")
            } else {
                try checkRange(agents, "--agents", 1...64)
            }
            try checkRange(trials, "--trials", 1...1000)
            try checkRange(size, "--size", matrixSizes)
        }

        func run() async throws { _ = try await perform(Progress(quiet: false)) }

        func perform(_ progress: Progress) async throws -> Int64 {
            guard let v = FailoverVictim(rawValue: victim) else { throw ValidationError("--victim must be one of leader, agent, not '\(victim)'") }
            let n = nodes ?? (common.quick ? 3 : 5)
            let t = trials ?? (common.quick ? 3 : 10)
            let s = size ?? (common.quick ? 512 : 2000)
            let parameters = ["nodes": String(n), "agents": String(agents), "trials": String(t), "size": String(s), "victim": victim]
            return try await execute(phase: "failover", common: common, progress: progress, parameters: parameters) { context in
                try await runFailover(nodes: n, agents: agents, trials: t, size: s, victim: v, context: context)
            }
        }
    }
}

/// `bench all`: every phase, then the report.
struct AllCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "all", abstract: "Run every phase (baseline, overhead, scaling, failover), then write the report.")
    @OptionGroup var common: CommonOptions

    func run() async throws {
        let progress = Progress(quiet: false)
        // Each phase with its own defaults (quick or full, exactly as `bench phase` has them) and
        // these common options.
        var baseline = try PhaseCommand.Baseline.parse([])
        var overhead = try PhaseCommand.Overhead.parse([])
        var scaling = try PhaseCommand.Scaling.parse([])
        var failover = try PhaseCommand.Failover.parse([])
        (baseline.common, overhead.common, scaling.common, failover.common) = (common, common, common, common)
        let ids = [
            try await baseline.perform(progress), try await overhead.perform(progress),
            try await scaling.perform(progress), try await failover.perform(progress),
        ]
        let store = try RunStore(path: common.db)
        let path = try writeReport(store: store, runIDs: ids, results: common.results, plots: common.plots)
        progress.line("report: \(path)")
    }
}

/// Runs a phase: records the run, its samples and summaries, then its CSV and charts; prints a summary.
@discardableResult
func execute(
    phase: String, common: CommonOptions, progress: Progress, parameters: [String: String],
    _ body: (PhaseContext) async throws -> PhaseOutput
) async throws -> Int64 {
    // The run records this process's OpenBLAS kernel: make it the right one (restarts the command
    // once with OPENBLAS_CORETYPE if OpenBLAS fell back to a generic kernel; agents get it too).
    prepareKernel(progress)
    let store = try RunStore(path: common.db)
    let facts = HostFacts.collect()
    var info = RunInfo(
        tag: common.tag.map { "\($0)-\(phase)" }, phase: phase, startedAt: Date(),
        parameters: parameters.merging(["quick": String(common.quick)].merging(
            common.injectAgentDelayMs > 0 ? ["injected_agent_delay_ms": String(common.injectAgentDelayMs)] : [:]) { a, _ in a }) { a, _ in a },
        gitCommit: facts.gitCommit, host: facts.host, cpuModel: facts.cpuModel, cores: facts.cores, memoryBytes: facts.memoryBytes,
        openBLASVersion: facts.openBLASVersion, openBLASKernel: facts.openBLASKernel, swiftVersion: facts.swiftVersion)
    let id = try store.beginRun(info)
    info.id = id
    progress.begin("\(phase) (run \(id))")
    let output: PhaseOutput
    do {
        output = try await body(common.context(progress))
    } catch {
        try? store.finishRun(id: id, status: .failed, finishedAt: Date())
        progress.line("[\(phase)] failed: \(error)")
        throw error
    }
    let samples = output.measurements.enumerated().map { k, m in
        Sample(runID: id, metric: m.metric, unit: m.unit, value: m.value, repetition: Int(m.labels["repetition"] ?? "") ?? 0,
            warmup: m.warmup, sequence: k, labels: m.labels, at: m.at)
    }
    try store.addSamples(samples)
    let summaries = summarize(runID: id, samples: samples)
    try store.addSummaries(summaries)
    try store.finishRun(
        id: id, status: output.failure == nil ? .completed : .failed, finishedAt: Date(),
        notes: (output.notes + (output.failure.map { ["FAILED: " + $0] } ?? [])).joined(separator: "\n"), clusterConfig: output.clusterConfig)
    // CSV and charts.
    try FileManager.default.createDirectory(atPath: common.results, withIntermediateDirectories: true)
    let csvPath = "\(common.results)/\(phase)-run\(id).csv"
    try tidyCSV(run: try store.run(id: id) ?? info, samples: samples).write(toFile: csvPath, atomically: true, encoding: .utf8)
    let charts = (try? drawCharts(phase: phase, runID: id, samples: samples, plots: common.plots, progress: progress)) ?? []
    for note in output.notes { progress.line("[\(phase)] note: \(note)") }
    progress.line("[\(phase)] run \(id) stored in \(common.db); \(samples.count) samples; \(csvPath)" + (charts.isEmpty ? "" : "; charts: \(charts.joined(separator: ", "))"))
    if common.json {
        print(String(decoding: try jsonEncoder().encode(JSONSummary(run: id, phase: phase, summaries: summaries, notes: output.notes)), as: UTF8.self))
    } else {
        printSummaries(summaries)
    }
    if let failure = output.failure { throw BenchError(failure) }
    return id
}

struct JSONSummary: Encodable {
    var run: Int64
    var phase: String
    var summaries: [MetricSummary]
    var notes: [String]
}

/// Median, bootstrap CI, CV and percentiles per (metric, labels without the repetition).
func summarize(runID: Int64, samples: [Sample]) -> [MetricSummary] {
    var groups: [String: (metric: String, unit: String, labels: [String: String], values: [Double])] = [:]
    var order: [String] = []
    for s in samples where !s.warmup {
        var labels = s.labels
        labels["repetition"] = nil
        labels["trial"] = nil
        let key = s.metric + "|" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        if groups[key] == nil {
            groups[key] = (s.metric, s.unit, labels, [])
            order.append(key)
        }
        groups[key]!.values.append(s.value)
    }
    return order.compactMap { key in
        let g = groups[key]!
        if g.values.count == 1 {
            // One value (a peak, a per-run count): no spread to speak of.
            return MetricSummary(
                runID: runID, metric: g.metric, unit: g.unit, labels: g.labels, count: 1, median: g.values[0],
                min: g.values[0], max: g.values[0])
        }
        guard let summary = try? Summary(g.values) else { return nil }
        let ci = try? bootstrapMedianCI(g.values, seed: 1)
        return MetricSummary(
            runID: runID, metric: g.metric, unit: g.unit, labels: g.labels, count: summary.count, median: summary.p50,
            ciLow: ci?.lower, ciHigh: ci?.upper, confidence: ci?.confidence, mean: summary.mean, cv: summary.coefficientOfVariation,
            min: summary.min, max: summary.max, p90: summary.p90, p99: summary.p99)
    }
}

func printSummaries(_ summaries: [MetricSummary]) {
    var rows = [["METRIC", "LABELS", "N", "MEDIAN", "95% CI", "CV", "P99", "UNIT", ""]]
    for s in summaries {
        let labels = s.labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let noisy = (s.cv ?? 0) > 0.10 && s.count > 1 ? "noisy (CV > 10 %)" : ""
        rows.append([
            s.metric, labels, String(s.count), format(s.median),
            s.ciLow.map { "[\(format($0)), \(format(s.ciHigh ?? $0))]" } ?? "-",
            s.cv.map { String(format: "%.1f %%", $0 * 100) } ?? "-", s.p99.map(format) ?? "-", s.unit, noisy,
        ])
    }
    printTable(rows)
}

func format(_ v: Double) -> String {
    if v == v.rounded() && abs(v) < 1e9 { return String(Int(v)) }
    return abs(v) >= 100 ? String(format: "%.0f", v) : abs(v) >= 1 ? String(format: "%.2f", v) : String(format: "%.3g", v)
}

func printTable(_ rows: [[String]]) {
    guard let width = rows.map(\.count).max() else { return }
    var widths = [Int](repeating: 0, count: width)
    for row in rows { for (k, cell) in row.enumerated() { widths[k] = max(widths[k], cell.count) } }
    for row in rows {
        print(row.enumerated().map { k, cell in k == row.count - 1 ? cell : cell.padding(toLength: widths[k], withPad: " ", startingAt: 0) }
            .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
    }
}

/// JSON for scripts: ISO 8601 dates; non-finite numbers (a CV of a zero mean) as strings.
func jsonEncoder() -> JSONEncoder {
    let encoder = JSONEncoder()
    encoder.dateEncodingStrategy = .iso8601
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "Inf", negativeInfinity: "-Inf", nan: "NaN")
    return encoder
}
