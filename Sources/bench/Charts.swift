import BenchCharts
import BenchStatistics
import BenchStore
import Foundation

/// Draws a run's charts into `plots/` as `<phase>-run<ID>-<chart>.{gp,dat,png,svg}`; returns the
/// PNG paths. A chart that cannot be rendered (no gnuplot) keeps its script and data.
func drawCharts(phase: String, runID: Int64, samples: [Sample], plots: String, progress: Progress) throws -> [String] {
    try FileManager.default.createDirectory(atPath: plots, withIntermediateDirectories: true)
    let summaries = summarize(runID: runID, samples: samples)
    func stem(_ name: String) -> String { "\(phase)-run\(runID)-\(name)" }
    func summary(_ metric: String) -> [MetricSummary] { summaries.filter { $0.metric == metric } }
    func int(_ s: MetricSummary, _ key: String) -> Int { Int(s.labels[key] ?? "") ?? 0 }
    var charts: [Chart] = []
    switch phase {
    case "baseline":
        var byThreads: [Int: [(size: Int, gflops: Double, ciLow: Double?, ciHigh: Double?)]] = [:]
        for s in summary("gflops") { byThreads[int(s, "threads"), default: []].append((int(s, "size"), s.median, s.ciLow, s.ciHigh)) }
        let peak = summary("peak_gflops").map(\.median).max()
        charts.append(Chart.gflopsVsSize(seriesByThreads: byThreads, peak: peak, fileStem: stem("gflops-vs-size")))
    case "overhead":
        let points = summary("overhead_pct").map { (size: int($0, "size"), overheadPercent: $0.median, ciLow: $0.ciLow, ciHigh: $0.ciHigh) }
        var overhead = Chart.overheadVsSize(points: points, target: Targets.overheadPercent, fileStem: stem("overhead-vs-size"))
        let orchestration = summary("orchestration_overhead_pct").sorted { int($0, "size") < int($1, "size") }
        if !orchestration.isEmpty {
            overhead.series.append(Series(
                title: "orchestration alone (median, 95 % CI)",
                points: orchestration.map { DataPoint(x: Double(int($0, "size")), y: $0.median, yLow: $0.ciLow, yHigh: $0.ciHigh) },
                style: .errorlines))
        }
        charts.append(overhead)
        let stream = samples.filter { $0.metric == "stream_submit_to_commit_ms" && !$0.warmup }.map(\.value)
        let perTask = samples.filter { $0.metric == "submit_to_commit_ms" && !$0.warmup }.map(\.value)
        var cdf: [String: [Double]] = [:]
        if !stream.isEmpty { cdf["stream of small submissions"] = stream }
        if !perTask.isEmpty { cdf["one task at a time"] = perTask }
        if !cdf.isEmpty {
            charts.append(Chart.latencyCDF(samplesByLabel: cdf, title: "Submission-to-commit latency (CDF)", fileStem: stem("submit-latency-cdf")))
        }
    case "scaling":
        let throughput = summary("throughput_tasks_per_s").sorted { int($0, "agents") < int($1, "agents") }
        if let one = throughput.first(where: { int($0, "agents") == 1 })?.median, one > 0 {
            let cores = throughput.first.map { int($0, "cores") } ?? 0
            let points = throughput.map { s -> (agents: Int, speedup: Double, efficiency: Double, ciLow: Double?, ciHigh: Double?) in
                let k = Double(int(s, "agents"))
                // Efficiency in percent, as the chart's axis is.
                return (int(s, "agents"), s.median / one, s.median / one / k * 100, s.ciLow.map { $0 / one / k * 100 }, s.ciHigh.map { $0 / one / k * 100 })
            }
            let fit = try? ScalabilityFit.universalScalabilityLaw(throughput.map { ScalingPoint(agents: int($0, "agents"), throughput: $0.median) })
            let maxAgents = Double(throughput.map { int($0, "agents") }.max() ?? 1)
            let fitted = fit.map { f in stride(from: 1.0, through: max(maxAgents * 1.5, maxAgents + 2), by: 0.25).map { (agents: $0, efficiency: f.efficiency(agents: $0) * 100) } }
            charts.append(Chart.scaling(
                points: points, fitted: fitted, target: Targets.efficiency * 100,
                oversubscribedFrom: cores > 0 && points.contains { $0.agents > cores } ? cores + 1 : nil, fileStem: stem("scaling")))
        }
    case "failover":
        // The first trial's timeline (the CSV holds every trial's).
        let timeline = samples.filter { $0.metric == "completions_per_s" && $0.labels["trial"] == "1" }
            .compactMap { s in s.at.map { (t: $0, tasksPerSecond: s.value) } }
        if !timeline.isEmpty {
            let leader = samples.first { $0.metric == "new_leader_ms" && $0.labels["trial"] == "1" }.map { $0.value / 1000 }
            let full = samples.first { $0.metric == "time_to_full_throughput_ms" && $0.labels["trial"] == "1" }.map { $0.value / 1000 }
            charts.append(Chart.failoverTimeline(
                throughput: timeline, kill: 0, newLeader: leader, recovered: full, target: Targets.failoverMs / 1000,
                title: "Task throughput through a leader SIGKILL (trial 1)", xLabel: "time since the kill (s)",
                fileStem: stem("failover-timeline")))
        }
        var cdf: [String: [Double]] = [:]
        for metric in ["new_leader_ms", "first_commit_ms", "first_completion_ms"] {
            let values = samples.filter { $0.metric == metric }.map(\.value)
            if !values.isEmpty { cdf[metric.replacingOccurrences(of: "_ms", with: "").replacingOccurrences(of: "_", with: " ")] = values }
        }
        if !cdf.isEmpty {
            charts.append(Chart.latencyCDF(
                samplesByLabel: cdf, targetMs: Targets.failoverMs, title: "Recovery times after SIGKILL, all trials (CDF)",
                xLabel: "time after the kill (ms, log scale)", fileStem: stem("recovery-cdf")))
        }
    default:
        break
    }
    var pngs: [String] = []
    for chart in charts {
        do {
            let files = try drawChart(chart, directory: plots)
            pngs.append(files.png)
        } catch {
            progress.line("chart \(chart.fileStem): \(error) (its .gp and .dat are in \(plots))")
        }
    }
    return pngs
}
