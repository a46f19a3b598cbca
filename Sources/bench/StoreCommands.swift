import ArgumentParser
import BenchStatistics
import BenchStore
import Foundation

struct StoreOption: ParsableArguments {
    @Option(help: "The SQLite run store.")
    var db = "results/flotilla-bench.sqlite"

    func open() throws -> RunStore {
        guard FileManager.default.fileExists(atPath: db) else {
            throw ValidationError("no run store at \(db): run a phase first (e.g. `bench all --quick`) or give --db")
        }
        return try RunStore(path: db)
    }
}

/// `bench list`.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List stored runs, newest first.")
    @OptionGroup var store: StoreOption
    @Option(help: "Only runs of this phase.") var phase: String?
    @Option(help: "At most this many.") var limit = 50
    @Flag(help: "Print JSON.") var json = false

    func validate() throws { try checkRange(limit, "--limit", 1...1_000_000) }

    func run() async throws {
        let runs = try store.open().runs(phase: phase, limit: limit)
        if json {
            let encoder = jsonEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(runs), as: UTF8.self))
            return
        }
        var rows = [["ID", "TAG", "PHASE", "STARTED", "STATUS", "COMMIT", "KERNEL", "PARAMETERS"]]
        let f = ISO8601DateFormatter()
        for r in runs {
            rows.append([
                String(r.id), r.tag ?? "", r.phase, f.string(from: r.startedAt), r.status.rawValue, r.gitCommit, r.openBLASKernel,
                r.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
            ])
        }
        printTable(rows)
        if runs.isEmpty { print("no runs") }
    }
}

/// `bench show ID`.
struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one run: its facts and the summary of each metric.")
    @OptionGroup var store: StoreOption
    @Argument(help: "Run id, tag, `latest` or `latest:<phase>`.") var run: String
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let s = try store.open()
        let info = try s.requireRun(run)
        let summaries = try s.summaries(runID: info.id)
        if json {
            print(String(decoding: try jsonEncoder().encode(JSONSummary(run: info.id, phase: info.phase, summaries: summaries, notes: [info.notes])), as: UTF8.self))
            return
        }
        print("run \(info.id)\(info.tag.map { " (\($0))" } ?? ""): \(info.phase), \(info.status.rawValue), started \(info.startedAt)")
        print("  host \(info.host): \(info.cpuModel), \(info.cores) cores, \(info.memoryBytes >> 30) GiB; commit \(info.gitCommit)")
        print("  OpenBLAS: \(info.openBLASKernel) — \(info.openBLASVersion)")
        print("  Swift: \(info.swiftVersion)")
        print("  parameters: " + info.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        if !info.notes.isEmpty { print("  notes: \(info.notes.replacingOccurrences(of: "\n", with: "\n         "))") }
        printSummaries(summaries)
    }
}

/// `bench export --run ID --csv`.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Write a run's raw samples as tidy CSV (RFC 4180).")
    @OptionGroup var store: StoreOption
    @Option(help: "Run id, tag, `latest` or `latest:<phase>`.") var run = "latest"
    @Flag(help: "CSV (the only format for now).") var csv = false
    @Option(help: "Write to this file instead of standard output.") var out: String?
    @Flag(help: "Include warm-up samples.") var includeWarmup = false

    func run() async throws {
        let s = try store.open()
        let info = try s.requireRun(run)
        let text = tidyCSV(run: info, samples: try s.samples(runID: info.id, metric: nil, includeWarmup: includeWarmup))
        if let out {
            try text.write(toFile: out, atomically: true, encoding: .utf8)
            FileHandle.standardError.write(Data("wrote \(out)\n".utf8))
        } else {
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}

/// `bench tag ID NAME`.
struct TagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tag", abstract: "Name a run, so that compare and show accept the name.")
    @OptionGroup var store: StoreOption
    @Argument(help: "Run id.") var run: String
    @Argument(help: "The tag.") var tag: String

    func run() async throws {
        let s = try store.open()
        let info = try s.requireRun(run)
        try s.setTag(tag, for: info.id)
        print("run \(info.id) tagged \(tag)")
    }
}

/// Whether a bigger value of a metric is better.
func direction(of metric: String) -> MetricDirection {
    let higher = ["gflops", "throughput", "speedup", "efficiency", "completions"]
    return higher.contains { metric.contains($0) } ? .higherIsBetter : .lowerIsBetter
}

/// `bench compare BASELINE CANDIDATE`.
struct CompareCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Compare two runs of a phase metric by metric; exit status 1 on a real regression.",
        discussion: """
            For each metric and point present in both runs: the change of the median with a 95 % \
            bootstrap confidence interval. A change is called better or worse only if its interval \
            excludes zero AND it exceeds the noise threshold; otherwise "same". Use it as a CI gate.
            """)
    @OptionGroup var store: StoreOption
    @Argument(help: "Baseline run (id, tag, latest:<phase>).") var baseline: String
    @Argument(help: "Candidate run.") var candidate: String
    @Option(help: "Relative change below which a difference is noise.") var threshold = 0.05
    @Option(help: "Only these metrics (comma-separated); default: all shared ones.") var metrics: String?
    @Flag(help: "Print JSON.") var json = false

    /// A relative change: 0 calls every significant change better or worse; 1 only changes beyond 100 %.
    func validate() throws { try checkRange(threshold, "--threshold", 0...1) }

    func run() async throws {
        let s = try store.open()
        let a = try s.requireRun(baseline)
        let b = try s.requireRun(candidate)
        guard a.phase == b.phase else { throw ValidationError("run \(a.id) is a \(a.phase) run and \(b.id) a \(b.phase) run: compare runs of one phase") }
        let rows = try compareRuns(store: s, a, b, threshold: threshold, only: metrics.map { Set($0.split(separator: ",").map(String.init)) })
        if json {
            print(String(decoding: try jsonEncoder().encode(rows), as: UTF8.self))
        } else {
            var table = [["METRIC", "POINT", "BASELINE", "CANDIDATE", "CHANGE", "95% CI OF DIFFERENCE", "VERDICT"]]
            for r in rows {
                table.append([r.metric, r.point, format(r.baseline), format(r.candidate), String(format: "%+.1f %%", r.relativeChange * 100),
                    "[\(format(r.ciLow)), \(format(r.ciHigh))]", r.verdict])
            }
            printTable(table)
            let worse = rows.filter { $0.verdict == "worse" }.count
            print("\(rows.count) comparisons: \(rows.filter { $0.verdict == "better" }.count) better, \(rows.filter { $0.verdict == "same" }.count) same, \(worse) worse")
        }
        if rows.contains(where: { $0.verdict == "worse" }) { throw ExitCode(1) }
    }
}

struct ComparisonRow: Encodable {
    var metric: String
    var point: String
    var baseline: Double
    var candidate: Double
    var relativeChange: Double
    var ciLow: Double
    var ciHigh: Double
    var verdict: String
}

func compareRuns(store: RunStore, _ a: RunInfo, _ b: RunInfo, threshold: Double, only: Set<String>?) throws -> [ComparisonRow] {
    func grouped(_ run: RunInfo) throws -> [String: (metric: String, point: String, values: [Double])] {
        var out: [String: (String, String, [Double])] = [:]
        for sample in try store.samples(runID: run.id, metric: nil, includeWarmup: false) {
            if let only, !only.contains(sample.metric) { continue }
            var labels = sample.labels
            labels["repetition"] = nil
            labels["trial"] = nil
            labels["kernel"] = nil
            let point = labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            out[sample.metric + "|" + point, default: (sample.metric, point, [])].2.append(sample.value)
        }
        return out
    }
    let ga = try grouped(a)
    let gb = try grouped(b)
    var rows: [ComparisonRow] = []
    for key in ga.keys.sorted() {
        guard let x = ga[key], let y = gb[key], !x.values.isEmpty, !y.values.isEmpty else { continue }
        // Timelines and counters are not comparable point by point.
        if x.metric == "completions_per_s" { continue }
        guard let c = try? compare(baseline: x.values, candidate: y.values, direction: direction(of: x.metric), noiseThreshold: threshold, seed: 7) else {
            continue
        }
        let verdict: String
        switch c.verdict {
        case .better: verdict = "better"
        case .worse: verdict = "worse"
        case .same: verdict = "same"
        }
        rows.append(ComparisonRow(
            metric: x.metric, point: x.point, baseline: c.baselineMedian, candidate: c.candidateMedian, relativeChange: c.relativeChange,
            ciLow: c.difference.lower, ciHigh: c.difference.upper, verdict: verdict))
    }
    return rows
}
