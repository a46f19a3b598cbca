import ArgumentParser
import BenchStatistics
import BenchStore
import Foundation

/// `bench report`.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a Markdown report of runs: charts, each target's pass or fail, and a capacity-planning fit.")
    @OptionGroup var store: StoreOption
    @Option(help: "Runs to report (comma-separated ids or tags); default: the latest run of each phase.") var run: String?
    @Option(help: "Where the report goes.") var results = "results"
    @Option(help: "Where the charts are (and are drawn if missing).") var plots = "plots"

    func run() async throws {
        let s = try store.open()
        var ids: [Int64] = []
        if let run {
            for ref in run.split(separator: ",") { ids.append(try s.requireRun(String(ref)).id) }
        } else {
            for phase in ["baseline", "overhead", "scaling", "failover"] {
                if let r = try s.runs(phase: phase, limit: 20).first(where: { $0.status == .completed }) { ids.append(r.id) }
            }
        }
        guard !ids.isEmpty else { throw ValidationError("no completed runs to report") }
        print(try writeReport(store: s, runIDs: ids, results: results, plots: plots))
    }
}

/// The targets the report judges against.
enum Targets {
    static let overheadPercent = 10.0
    static let efficiency = 0.90
    static let failoverMs = 5_000.0
}

/// Writes `results/report-run<ids>.md` (and `results/report.md`, the latest); returns its path.
func writeReport(store: RunStore, runIDs: [Int64], results: String, plots: String) throws -> String {
    var md: [String] = []
    let runs = try runIDs.compactMap { try store.run(id: $0) }
    guard let first = runs.first else { throw BenchError("no such runs: \(runIDs)") }
    md.append("# Flotilla bench report")
    md.append("")
    md.append("Runs \(runs.map { "\($0.id) (\($0.phase))" }.joined(separator: ", ")), \(ISO8601DateFormatter().string(from: first.startedAt)); "
        + "commit `\(first.gitCommit)`; host `\(first.host)`: \(first.cpuModel), \(first.cores) logical cores, \(first.memoryBytes >> 30) GiB; "
        + "OpenBLAS kernel **\(first.openBLASKernel)** (\(first.openBLASVersion)); \(first.swiftVersion).")
    md.append("")
    md.append("Every figure is the median of the measured repetitions (warm-ups excluded) with a 95 % bootstrap confidence interval; "
        + "CV is the coefficient of variation. Raw samples: `bench export --run ID --csv`. Method: docs/benchmarks.md.")
    md.append("")
    var verdicts: [(String, String, String)] = []
    var sections: [String] = []
    for run in runs {
        let summaries = try store.summaries(runID: run.id)
        let samples = try store.samples(runID: run.id, metric: nil, includeWarmup: false)
        var section = ["## \(run.phase.capitalized) (run \(run.id))", ""]
        section.append("Parameters: " + run.parameters.sorted { $0.key < $1.key }.map { "`\($0.key)=\($0.value)`" }.joined(separator: " ") + ".")
        section.append("")
        let charts = chartFiles(plots: plots, phase: run.phase, runID: run.id)
        for chart in charts { section.append("![\(chart)](\(relativePath(from: results, to: plots + "/" + chart)))") }
        if !charts.isEmpty { section.append("") }
        switch run.phase {
        case "baseline":
            section += baselineSection(summaries)
        case "overhead":
            let (lines, verdict) = overheadSection(summaries)
            section += lines
            if let verdict { verdicts.append(verdict) }
        case "scaling":
            let (lines, v) = scalingSection(summaries, cores: run.cores)
            section += lines
            verdicts += v
        case "failover":
            let (lines, v) = failoverSection(summaries, samples: samples)
            section += lines
            verdicts += v
        default:
            break
        }
        let noisy = summaries.filter { ($0.cv ?? 0) > 0.10 && $0.count > 2 && !$0.metric.hasPrefix("completions") }
        if !noisy.isEmpty {
            section.append("")
            section.append("Noise: \(noisy.count) figure\(noisy.count == 1 ? "" : "s") with CV above 10 % ("
                + noisy.prefix(6).map { "\($0.metric) \(labelText($0.labels)) \(String(format: "%.0f %%", ($0.cv ?? 0) * 100))" }.joined(separator: "; ")
                + (noisy.count > 6 ? "; ..." : "") + "): on this 2-core machine the processes compete for the cores; read their intervals, not their medians alone.")
        }
        if !run.notes.isEmpty {
            section.append("")
            section.append("Notes: " + run.notes.split(separator: "\n").joined(separator: "; "))
        }
        sections.append(section.joined(separator: "\n"))
    }
    md.append("## Targets")
    md.append("")
    md.append("| Target | Measured | Verdict |")
    md.append("| --- | --- | --- |")
    for (target, measured, verdict) in verdicts { md.append("| \(target) | \(measured) | \(verdict) |") }
    if verdicts.isEmpty { md.append("| (no phase with a target in these runs) | | |") }
    md.append("")
    md += sections.flatMap { [$0, ""] }
    try FileManager.default.createDirectory(atPath: results, withIntermediateDirectories: true)
    let path = "\(results)/report-run\(runIDs.map(String.init).joined(separator: "-")).md"
    let text = md.joined(separator: "\n")
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    try text.write(toFile: "\(results)/report.md", atomically: true, encoding: .utf8)
    return path
}

func labelText(_ labels: [String: String]) -> String {
    labels.sorted { $0.key < $1.key }.filter { !["cores", "kernel", "precision"].contains($0.key) }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
}

func ci(_ s: MetricSummary) -> String {
    guard let lo = s.ciLow, let hi = s.ciHigh, s.count > 1 else { return format(s.median) }
    return "\(format(s.median)) [\(format(lo)), \(format(hi))]"
}

/// Orders points numerically by their labels (size=500 before size=1000).
func numericOrder(_ a: MetricSummary, _ b: MetricSummary) -> Bool {
    if a.metric != b.metric { return a.metric < b.metric }
    for key in Set(a.labels.keys).union(b.labels.keys).sorted() {
        let x = a.labels[key] ?? "", y = b.labels[key] ?? ""
        if x == y { continue }
        if let i = Double(x), let j = Double(y) { return i < j }
        return x < y
    }
    return false
}

private func metricTable(_ unsorted: [MetricSummary], title: String, keepOrder: Bool = false) -> [String] {
    let rows = keepOrder ? unsorted : unsorted.sorted(by: numericOrder)
    guard !rows.isEmpty else { return [] }
    var out = ["| \(title) | point | n | median [95 % CI] | CV | unit |", "| --- | --- | --- | --- | --- | --- |"]
    for s in rows {
        out.append("| \(s.metric) | \(labelText(s.labels)) | \(s.count) | \(ci(s)) | \(s.cv.map { String(format: "%.1f %%", $0 * 100) } ?? "-") | \(s.unit) |")
    }
    return out
}

private func baselineSection(_ summaries: [MetricSummary]) -> [String] {
    var out = metricTable(summaries.filter { $0.metric == "gflops" }, title: "metric")
    let peaks = Dictionary(summaries.filter { $0.metric == "peak_gflops" }.map { ($0.labels["threads"] ?? "", $0.median) }) { a, _ in a }
    for s in summaries where s.metric == "gflops" {
        if let peak = peaks[s.labels["threads"] ?? ""], peak > 0, s.median < peak / 2, (Int(s.labels["size"] ?? "") ?? 0) >= 1000 {
            out.append("")
            out.append("**Under half of peak** at \(labelText(s.labels)): \(format(s.median)) of \(format(peak)) GFLOP/s. "
                + "This usually means OpenBLAS fell back to a generic kernel (check the kernel name above and `OPENBLAS_CORETYPE`), or the cores were shared.")
        }
    }
    if !peaks.isEmpty {
        out.append("")
        out.append("Theoretical peak (cores × clock × FLOPs per cycle, from /proc/cpuinfo; an estimate — a VM reports its base clock): "
            + peaks.sorted { $0.key < $1.key }.map { "\($0.key) thread(s): \(format($0.value)) GFLOP/s" }.joined(separator: ", ") + ".")
    }
    return out
}

private func overheadSection(_ summaries: [MetricSummary]) -> ([String], (String, String, String)?) {
    let keys = ["submit_to_commit_ms", "commit_to_assign_ms", "assign_to_start_ms", "agent_run_ms", "compute_ms", "report_ms", "end_to_end_ms",
                "overhead_pct", "orchestration_overhead_pct"]
    var out = metricTable(summaries.filter { keys.contains($0.metric) }.sorted { (Int($0.labels["size"] ?? "") ?? 0, $0.metric) < (Int($1.labels["size"] ?? "") ?? 0, $1.metric) }, title: "per task", keepOrder: true)
    let stream = summaries.filter { $0.metric == "stream_submit_to_commit_ms" }
    if let s = stream.first {
        out.append("")
        out.append("Submission-to-commit latency under a stream of \(s.count) small submissions (\(s.labels["clients"] ?? "?") clients): "
            + "p50 \(format(s.median)) ms, p90 \(s.p90.map(format) ?? "-") ms, p99 \(s.p99.map(format) ?? "-") ms, max \(s.max.map(format) ?? "-") ms.")
    }
    let overhead = summaries.filter { $0.metric == "overhead_pct" }.sorted { (Int($0.labels["size"] ?? "") ?? 0) < (Int($1.labels["size"] ?? "") ?? 0) }
    let orchestration = summaries.filter { $0.metric == "orchestration_overhead_pct" }
    out.append("")
    out.append("overhead = (end-to-end − compute) / compute, where compute is the gemm call alone; it includes generating the matrices on the agent "
        + "and verifying the product (Freivalds), which are work, not orchestration. orchestration overhead = (end-to-end − everything the agent did) / compute.")
    if let under = overhead.first(where: { $0.median < Targets.overheadPercent }) {
        out.append("")
        out.append("Overhead stays under \(Int(Targets.overheadPercent)) % from n = \(under.labels["size"] ?? "?") on (of the sizes measured).")
    }
    guard let target = overhead.first(where: { $0.labels["size"] == "4096" }) ?? overhead.last else { return (out, nil) }
    let orch = orchestration.first { $0.labels["size"] == target.labels["size"] }
    let pass = target.median < Targets.overheadPercent
    let measured = "\(ci(target)) % at n = \(target.labels["size"] ?? "?")" + (orch.map { "; orchestration alone \(ci($0)) %" } ?? "")
        + (target.labels["size"] == "4096" ? "" : " (4096 not measured)")
    return (out, ("overhead < 10 % of a 4096×4096 task", measured, pass ? "pass" : "**fail**"))
}

private func scalingSection(_ summaries: [MetricSummary], cores: Int) -> ([String], [(String, String, String)]) {
    let throughput = summaries.filter { $0.metric == "throughput_tasks_per_s" }.sorted { (Int($0.labels["agents"] ?? "") ?? 0) < (Int($1.labels["agents"] ?? "") ?? 0) }
    guard let one = throughput.first(where: { $0.labels["agents"] == "1" }), one.median > 0 else {
        return (metricTable(throughput, title: "metric"), [])
    }
    var out = ["| agents | throughput (tasks/s) | speedup | efficiency | busy agents > cores? |", "| --- | --- | --- | --- | --- |"]
    var verdicts: [(String, String, String)] = []
    var points: [ScalingPoint] = []
    for s in throughput {
        let k = Int(s.labels["agents"] ?? "") ?? 1
        let speedup = s.median / one.median
        let efficiency = speedup / Double(k)
        let over = k > cores
        points.append(ScalingPoint(agents: k, throughput: s.median))
        out.append("| \(k) | \(ci(s)) | \(String(format: "%.2f", speedup)) | \(String(format: "%.0f %%", efficiency * 100)) | \(over ? "yes (\(cores) cores)" : "no") |")
        if k > 1 {
            verdicts.append(("scaling efficiency > 90 % (\(k) agents)", String(format: "%.0f %%", efficiency * 100),
                over ? "not judged: \(k) busy agents on \(cores) cores" : (efficiency > Targets.efficiency ? "pass" : "**fail**")))
        }
    }
    out.append("")
    out.append("This machine has \(cores) logical cores: with more busy agents than cores, agents share cores and efficiency falls by construction; "
        + "those points measure the machine, not the orchestrator, and are marked, not hidden.")
    if points.count >= 2, let fit = try? ScalabilityFit.universalScalabilityLaw(points) {
        out.append("")
        out.append("### Capacity planning")
        out.append("")
        out.append(String(format: "Universal Scalability Law fit on the medians: σ (contention) = %.4f, κ (coherency) = %.5f, λ = %.3f tasks/s per agent.", fit.sigma, fit.kappa, fit.lambda))
        if let n = fit.agentsBeforeEfficiencyDrops(below: Targets.efficiency) {
            out.append("The fit predicts efficiency stays above 90 % up to \(n) agent\(n == 1 ? "" : "s")" + (fit.peakAgents.map { String(format: "; throughput peaks near %.0f agents", $0) } ?? "") + ".")
        }
        out.append("On this machine the fit describes \(cores) cores shared by nodes and agents; on machines where each agent has its own cores, measure again before planning.")
    }
    return (out, verdicts)
}

private func failoverSection(_ summaries: [MetricSummary], samples: [Sample]) -> ([String], [(String, String, String)]) {
    let keys = ["new_leader_ms", "first_commit_ms", "first_completion_ms", "reassignment_ms", "throughput_dip_pct", "time_to_full_throughput_ms"]
    var out = metricTable(summaries.filter { keys.contains($0.metric) }, title: "per kill")
    var verdicts: [(String, String, String)] = []
    for metric in ["first_commit_ms", "new_leader_ms", "reassignment_ms"] {
        let values = samples.filter { $0.metric == metric }.map(\.value)
        guard let worst = values.max(), let s = summaries.first(where: { $0.metric == metric }) else { continue }
        let name = metric == "first_commit_ms" ? "failover < 5 s (kill → first commit)" : metric == "new_leader_ms" ? "failover < 5 s (kill → new leader)" : "agent kill → reassignment < 5 s"
        verdicts.append((name, "median \(ci(s)) ms, worst \(format(worst)) ms over \(values.count) kills", worst < Targets.failoverMs ? "pass" : "**fail**"))
    }
    let lost = samples.filter { $0.metric == "run_tasks_lost" }.map(\.value).reduce(0, +)
    let twice = samples.filter { $0.metric == "run_tasks_completed_twice" }.map(\.value).reduce(0, +)
    let acked = samples.filter { $0.metric == "run_tasks_acknowledged" }.map(\.value).reduce(0, +)
    verdicts.append(("no task lost or completed twice", "\(Int(lost)) lost, \(Int(twice)) twice, of \(Int(acked)) acknowledged", lost == 0 && twice == 0 ? "pass" : "**fail**"))
    out.append("")
    out.append("Times are from the SIGKILL to: a node reporting itself leader in a newer term (new leader); a proposal sent right after the kill "
        + "being committed (first commit); the new leader recording a task completion (first completion). Lost and duplicated tasks are counted over every acknowledged submission.")
    return (out, verdicts)
}

/// Chart files of a run (PNG), by the naming convention of `drawCharts`.
func chartFiles(plots: String, phase: String, runID: Int64) -> [String] {
    let prefix = "\(phase)-run\(runID)-"
    return ((try? FileManager.default.contentsOfDirectory(atPath: plots)) ?? []).filter { $0.hasPrefix(prefix) && $0.hasSuffix(".png") }.sorted()
}

func relativePath(from dir: String, to file: String) -> String {
    let a = URL(fileURLWithPath: dir).standardizedFileURL.pathComponents
    let b = URL(fileURLWithPath: file).standardizedFileURL.pathComponents
    var k = 0
    while k < min(a.count, b.count) && a[k] == b[k] { k += 1 }
    return (Array(repeating: "..", count: a.count - k) + b[k...]).joined(separator: "/")
}
