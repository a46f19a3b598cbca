import Foundation

// The charts bench draws, built from plain arrays. Each returns a `Chart` to pass to `drawChart`
// (or `writeChart` then `render`); adjust fields (title, notes, key, ...) before drawing if needed.

extension Chart {
    /// Matrix-multiply throughput against matrix size, one line per BLAS thread count, with the
    /// median's confidence interval as error bars and the theoretical peak as a dashed red line.
    /// Logarithmic x axis with a tic at every measured size.
    ///
    /// - Parameters:
    ///   - seriesByThreads: thread count → points (size n, median GFLOP/s, CI bounds if known).
    ///   - peak: the theoretical peak in GFLOP/s (for the thread count that reaches highest), or nil.
    public static func gflopsVsSize(
        seriesByThreads: [Int: [(size: Int, gflops: Double, ciLow: Double?, ciHigh: Double?)]],
        peak: Double?,
        title: String = "Matrix multiply throughput vs size",
        fileStem: String = "gflops-vs-size"
    ) -> Chart {
        let series = seriesByThreads.keys.sorted().map { threads in
            Series(
                title: threads == 1 ? "1 thread" : "\(threads) threads",
                points: (seriesByThreads[threads] ?? []).sorted { $0.size < $1.size }.map {
                    DataPoint(x: Double($0.size), y: $0.gflops, yLow: $0.ciLow, yHigh: $0.ciHigh)
                },
                style: .errorlines)
        }
        let sizes = Set(seriesByThreads.values.flatMap { $0.map(\.size) }).sorted().map(Double.init)
        var targets: [TargetLine] = []
        if let peak, peak.isFinite, peak > 0 {
            targets.append(.horizontal(y: peak, label: "theoretical peak \(short(peak)) GFLOP/s"))
        }
        return Chart(
            fileStem: fileStem, title: title, xLabel: "matrix size n (n × n matrices, log scale)",
            yLabel: "throughput (GFLOP/s)", xLog: true, xRange: logMargins(sizes), yRange: AxisRange(min: 0),
            xTics: sizes.isEmpty ? nil : sizes, series: series, targets: targets, key: .bottomRight)
    }

    /// Orchestration overhead (time through Flotilla against the bare kernel, in percent) against
    /// matrix size, with confidence intervals and the target as a dashed red line. Logarithmic x axis;
    /// the y axis starts at 0 unless an overhead is negative.
    public static func overheadVsSize(
        points: [(size: Int, overheadPercent: Double, ciLow: Double?, ciHigh: Double?)],
        target: Double = 10,
        title: String = "Orchestration overhead vs matrix size",
        fileStem: String = "overhead-vs-size"
    ) -> Chart {
        let sorted = points.sorted { $0.size < $1.size }
        let series = Series(
            title: "overhead (median, 95 % CI)",
            points: sorted.map {
                DataPoint(x: Double($0.size), y: $0.overheadPercent, yLow: $0.ciLow, yHigh: $0.ciHigh)
            },
            style: .errorlines)
        let lowest = sorted.flatMap { [$0.overheadPercent, $0.ciLow ?? 0] }.min() ?? 0
        return Chart(
            fileStem: fileStem, title: title, xLabel: "matrix size n (n × n matrices, log scale)",
            yLabel: "overhead vs bare kernel (%)", xLog: true,
            xRange: logMargins(sorted.map { Double($0.size) }), yRange: lowest >= 0 ? AxisRange(min: 0) : nil,
            xTics: sorted.isEmpty ? nil : Array(Set(sorted.map { Double($0.size) })).sorted(), series: [series],
            targets: [.horizontal(y: target, label: "target \(short(target)) %")], key: .topRight)
    }

    /// Empirical cumulative distribution of latencies: for each label ("3 nodes", "fsync on"), the
    /// percentage of samples at or below each latency, as a staircase on a logarithmic latency axis.
    /// Zero, negative and non-finite samples cannot be placed on the axis and are left out (the
    /// script's header says how many). Series with more than `maxPointsPerSeries` samples are thinned
    /// to that many evenly spaced ranks (always keeping the minimum and maximum).
    ///
    /// - Parameters:
    ///   - samplesByLabel: label → raw latency samples in milliseconds (warm-ups excluded).
    ///   - targetMs: a latency target drawn as a vertical dashed red line, or nil.
    public static func latencyCDF(
        samplesByLabel: [String: [Double]],
        targetMs: Double? = nil,
        title: String = "Latency distribution (CDF)",
        xLabel: String = "latency (ms, log scale)",
        fileStem: String = "latency-cdf",
        maxPointsPerSeries: Int = 2000
    ) -> Chart {
        var notes: [String] = []
        let labels = samplesByLabel.keys.sorted { $0.compare($1, options: .numeric) == .orderedAscending }
        let series = labels.map { label in
            let all = samplesByLabel[label] ?? []
            let values = all.filter { $0.isFinite && $0 > 0 }.sorted()
            if values.count < all.count {
                notes.append("\(label): \(all.count - values.count) zero, negative or non-finite samples left out")
            }
            let n = values.count
            var ranks = Array(0..<n)
            if n > max(2, maxPointsPerSeries) {
                let k = max(2, maxPointsPerSeries)
                ranks = (0..<k).map { Int((Double($0) * Double(n - 1) / Double(k - 1)).rounded()) }
            }
            let points = ranks.map { rank in
                DataPoint(x: values[rank], y: 100 * Double(rank + 1) / Double(n))
            }
            return Series(title: "\(label) (n = \(n))", points: points, style: .steps)
        }
        var targets: [TargetLine] = []
        if let targetMs, targetMs > 0 {
            targets.append(.vertical(x: targetMs, label: "target \(short(targetMs)) ms"))
        }
        return Chart(
            fileStem: fileStem, title: title, xLabel: xLabel, yLabel: "samples at or below (%)", xLog: true,
            yRange: AxisRange(min: 0, max: 100), series: series, targets: targets, key: .bottomRight,
            eventLabels: .bottomRight, notes: notes)
    }

    /// Scaling with the number of agents on one chart with two y axes: parallel efficiency in
    /// percent on the left (measured, with its confidence interval; the fitted curve dashed in the
    /// same colour; the target as a dashed red line) and speedup on the right (measured, and the
    /// ideal speedup = agents as a grey dashed line). A dotted marker shows where agents start to
    /// outnumber cores.
    ///
    /// - Parameters:
    ///   - points: agents, speedup (×, relative to one agent), efficiency in percent
    ///     (100 × speedup / agents), and the efficiency's confidence interval in percent if known.
    ///   - fitted: a fitted efficiency curve in percent (Amdahl or USL), sampled densely, or nil.
    ///   - target: the efficiency target in percent.
    ///   - oversubscribedFrom: the first agent count that exceeds the machine's cores, or nil.
    public static func scaling(
        points: [(agents: Int, speedup: Double, efficiency: Double, ciLow: Double?, ciHigh: Double?)],
        fitted: [(agents: Double, efficiency: Double)]? = nil,
        target: Double = 90,
        oversubscribedFrom: Int? = nil,
        title: String = "Scaling with agents",
        fileStem: String = "scaling"
    ) -> Chart {
        let sorted = points.sorted { $0.agents < $1.agents }
        var series = [
            Series(
                title: "efficiency (measured)",
                points: sorted.map {
                    DataPoint(x: Double($0.agents), y: $0.efficiency, yLow: $0.ciLow, yHigh: $0.ciHigh)
                },
                style: .errorlines, lineType: 1)
        ]
        if let fitted, !fitted.isEmpty {
            series.append(
                Series(
                    title: "efficiency (fitted)",
                    xy: fitted.sorted { $0.agents < $1.agents }.map { (x: $0.agents, y: $0.efficiency) },
                    style: .lines, dashed: true, lineType: 1))
        }
        series.append(
            Series(
                title: "speedup (measured)", xy: sorted.map { (x: Double($0.agents), y: $0.speedup) },
                style: .linespoints, axis: .y2, lineType: 2))
        if let first = sorted.first, let last = sorted.last {
            series.append(
                Series(
                    title: "ideal speedup",
                    xy: [(x: Double(first.agents), y: Double(first.agents)), (x: Double(last.agents), y: Double(last.agents))],
                    style: .lines, axis: .y2, dashed: true, lineType: 8))
        }
        var markers: [Marker] = []
        if let from = oversubscribedFrom {
            markers.append(Marker(x: Double(from) - 0.5, label: "agents > cores"))
        }
        let agents = Array(Set(sorted.map { Double($0.agents) })).sorted()
        let maxAgents = agents.last ?? 1
        return Chart(
            fileStem: fileStem, title: title, xLabel: "agents", yLabel: "parallel efficiency (%)",
            y2Label: "speedup (× one agent)", xRange: AxisRange(min: 0, max: maxAgents + 0.5),
            yRange: AxisRange(min: 0), y2Range: AxisRange(min: 0), xTics: agents.isEmpty ? nil : agents,
            series: series,
            targets: [.horizontal(y: target, label: "target \(short(target)) % efficiency")],
            markers: markers, key: .below)
    }

    /// Throughput over time around a leader failure: the measured throughput, dotted markers where
    /// the leader was killed, where a new leader was elected and where throughput recovered, and a
    /// dashed red line at kill + `target` seconds (the recovery target). The event labels are
    /// written from the bottom up, right of their lines, in the gap the outage leaves.
    ///
    /// - Parameters:
    ///   - throughput: (time in seconds, completed tasks per second). Any origin works (the run's
    ///     start, or the kill as 0, with negative times before it): say which in `xLabel`.
    ///   - kill, newLeader, recovered: event times in seconds, on the same origin.
    ///   - target: the recovery target in seconds after the kill.
    public static func failoverTimeline(
        throughput: [(t: Double, tasksPerSecond: Double)],
        kill: Double,
        newLeader: Double?,
        recovered: Double?,
        target: Double = 5,
        title: String = "Throughput through a leader failover",
        xLabel: String = "time since start (s)",
        fileStem: String = "failover-timeline"
    ) -> Chart {
        let sorted = throughput.sorted { $0.t < $1.t }
        var markers = [Marker(x: kill, label: "leader killed")]
        if let newLeader {
            markers.append(Marker(x: newLeader, label: "new leader (+\(short(newLeader - kill)) s)"))
        }
        if let recovered {
            markers.append(Marker(x: recovered, label: "recovered (+\(short(recovered - kill)) s)"))
        }
        let highest = sorted.map(\.tasksPerSecond).filter(\.isFinite).max() ?? 0
        return Chart(
            fileStem: fileStem, title: title, xLabel: xLabel, yLabel: "throughput (tasks/s)",
            yRange: AxisRange(min: 0, max: highest > 0 ? (highest * 1.1).rounded(.up) : nil),
            series: [Series(title: "completed tasks/s", xy: sorted.map { (x: $0.t, y: $0.tasksPerSecond) }, style: .lines)],
            targets: [.vertical(x: kill + target, label: "target: recovered by kill + \(short(target)) s")],
            markers: markers, key: .hidden, eventLabels: .bottomRight)
    }
}

/// A number for a label: up to 3 significant decimals, no trailing zeros ("147", "0.8", "2.35").
func short(_ value: Double) -> String {
    guard value.isFinite else { return "\(value)" }
    if value == value.rounded(), Swift.abs(value) < 1e15 { return String(Int64(value)) }
    var text = String(format: "%.3g", value)
    if Swift.abs(value) >= 1000 { text = String(format: "%.0f", value) }
    return text
}

/// A logarithmic x range reaching a little beyond the smallest and largest value (instead of
/// gnuplot's autoscale to whole decades), or nil without positive values.
func logMargins(_ values: [Double]) -> AxisRange? {
    let positive = values.filter { $0.isFinite && $0 > 0 }
    guard let low = positive.min(), let high = positive.max() else { return nil }
    return AxisRange(min: low / 1.4, max: high * 1.4)
}
