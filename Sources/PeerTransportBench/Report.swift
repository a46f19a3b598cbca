import Foundation

/// One measured run of one (transport, workload).
struct RunResult: Codable, Sendable {
    var kind = "run"
    var transport: String
    var workload: String
    var run: Int
    var window: Int
    var entriesPerMessage: Int
    var payloadBytes: Int
    var roundTrips: Int
    var seconds: Double
    /// Append round trips (append + its response) completed per second.
    var roundTripsPerSecond: Double
    /// Raft messages carried per second, both directions (2 × round trips).
    var messagesPerSecond: Double
    var entriesPerSecond: Double
    var p50Us: Double
    var p90Us: Double
    var p99Us: Double
    var maxUs: Double
    /// CPU time (user + system, all threads) per round trip, measured phase only.
    var leaderCPUUsPerRoundTrip: Double
    var followerCPUUsPerRoundTrip: Double
    var totalCPUUsPerRoundTrip: Double
    /// Both processes' CPU time divided by wall time: cores kept busy (this machine has 2).
    var coresBusy: Double
    /// Context switches (voluntary + involuntary) per round trip: thread hand-offs that blocked.
    var leaderContextSwitchesPerRoundTrip: Double
    var followerContextSwitchesPerRoundTrip: Double
    var leaderUserSeconds: Double
    var leaderSystemSeconds: Double
    var followerUserSeconds: Double
    var followerSystemSeconds: Double
    /// Raft messages per received batch (frame / gRPC message), as seen by each side.
    var followerMessagesPerBatch: Double
    var leaderMessagesPerBatch: Double
}

/// Nearest-rank percentile of sorted samples.
func percentile(_ sorted: [Duration], _ p: Double) -> Duration {
    precondition(!sorted.isEmpty)
    let rank = Int((p * Double(sorted.count)).rounded(.up))
    return sorted[min(max(rank - 1, 0), sorted.count - 1)]
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

func jsonLine(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.sortedKeys]
    return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
}

/// The median, min and max of every metric over a (transport, workload)'s runs.
struct Summary: Codable, Sendable {
    var kind = "median"
    var transport: String
    var workload: String
    var runs: Int
    var median: [String: Double]
    var min: [String: Double]
    var max: [String: Double]
}

var summaryMetrics: [(String, KeyPath<RunResult, Double>)] { [
    ("round_trips_per_second", \.roundTripsPerSecond),
    ("messages_per_second", \.messagesPerSecond),
    ("entries_per_second", \.entriesPerSecond),
    ("p50_us", \.p50Us), ("p90_us", \.p90Us), ("p99_us", \.p99Us), ("max_us", \.maxUs),
    ("leader_cpu_us_per_round_trip", \.leaderCPUUsPerRoundTrip),
    ("follower_cpu_us_per_round_trip", \.followerCPUUsPerRoundTrip),
    ("total_cpu_us_per_round_trip", \.totalCPUUsPerRoundTrip),
    ("cores_busy", \.coresBusy),
    ("leader_context_switches_per_round_trip", \.leaderContextSwitchesPerRoundTrip),
    ("follower_context_switches_per_round_trip", \.followerContextSwitchesPerRoundTrip),
    ("follower_messages_per_batch", \.followerMessagesPerBatch),
    ("leader_messages_per_batch", \.leaderMessagesPerBatch),
] }

func summarize(_ results: [RunResult]) -> [Summary] {
    var order: [String] = []
    var groups: [String: [RunResult]] = [:]
    for r in results {
        let key = r.workload + "/" + r.transport
        if groups[key] == nil { order.append(key) }
        groups[key, default: []].append(r)
    }
    // Workload by workload, gRPC first.
    order.sort { a, b in
        let (ra, rb) = (groups[a]![0], groups[b]![0])
        let wa = ["latency", "throughput", "batched"].firstIndex(of: ra.workload) ?? 9
        let wb = ["latency", "throughput", "batched"].firstIndex(of: rb.workload) ?? 9
        return wa != wb ? wa < wb : ra.transport < rb.transport
    }
    return order.map { key in
        let runs = groups[key]!
        var s = Summary(transport: runs[0].transport, workload: runs[0].workload, runs: runs.count, median: [:], min: [:], max: [:])
        for (name, path) in summaryMetrics {
            let values = runs.map { $0[keyPath: path] }
            s.median[name] = median(values)
            s.min[name] = values.min()
            s.max[name] = values.max()
        }
        return s
    }
}

private func fmt(_ x: Double, _ decimals: Int = 0) -> String { String(format: "%.\(decimals)f", x) }

private func pad(_ s: String, _ width: Int, left: Bool = false) -> String {
    let n = s.count
    if n >= width { return s }
    let spaces = String(repeating: " ", count: width - n)
    return left ? s + spaces : spaces + s
}

/// One line per run, for progress (stderr) — the same columns as the table.
func runLine(_ r: RunResult) -> String {
    "run \(r.run) \(pad(r.transport, 4, left: true)) \(pad(r.workload, 10, left: true))"
        + "  \(fmt(r.roundTripsPerSecond)) rt/s  \(fmt(r.entriesPerSecond)) entries/s"
        + "  p50 \(fmt(r.p50Us)) p90 \(fmt(r.p90Us)) p99 \(fmt(r.p99Us)) max \(fmt(r.maxUs)) µs"
        + "  CPU/rt leader \(fmt(r.leaderCPUUsPerRoundTrip, 1)) follower \(fmt(r.followerCPUUsPerRoundTrip, 1)) µs"
        + "  cores \(fmt(r.coresBusy, 2))  csw/rt \(fmt(r.leaderContextSwitchesPerRoundTrip, 1))/\(fmt(r.followerContextSwitchesPerRoundTrip, 1))"
        + "  msgs/batch in \(fmt(r.followerMessagesPerBatch, 1))/\(fmt(r.leaderMessagesPerBatch, 1))"
}

/// The human tables: medians, then the spread (min–max) of the main metrics, then nio ÷ grpc.
func table(_ summaries: [Summary]) -> String {
    var out = ""
    let columns: [(String, String, Int, Int)] = [  // header, metric, width, decimals
        ("rt/s", "round_trips_per_second", 9, 0), ("entries/s", "entries_per_second", 10, 0),
        ("p50 µs", "p50_us", 7, 0), ("p90 µs", "p90_us", 7, 0), ("p99 µs", "p99_us", 7, 0), ("max µs", "max_us", 7, 0),
        ("CPU µs/rt L", "leader_cpu_us_per_round_trip", 11, 1), ("F", "follower_cpu_us_per_round_trip", 6, 1),
        ("L+F", "total_cpu_us_per_round_trip", 6, 1), ("cores", "cores_busy", 5, 2),
        ("csw/rt L", "leader_context_switches_per_round_trip", 8, 1), ("F", "follower_context_switches_per_round_trip", 5, 1),
        ("msg/batch F", "follower_messages_per_batch", 11, 1), ("L", "leader_messages_per_batch", 5, 1),
    ]
    let runs = summaries.first?.runs ?? 0
    out += "Median of \(runs) run\(runs == 1 ? "" : "s") (rt = one append + its response; CPU = user+sys of each process per rt)\n"
    out += pad("transport", 9, left: true) + " " + pad("workload", 10, left: true)
    for c in columns { out += " " + pad(c.0, c.2) }
    out += "\n"
    for s in summaries {
        out += pad(s.transport, 9, left: true) + " " + pad(s.workload, 10, left: true)
        for c in columns { out += " " + pad(fmt(s.median[c.1]!, c.3), c.2) }
        out += "\n"
    }
    out += "\nSpread (min–max over runs)\n"
    let spread: [(String, String, Int)] = [
        ("rt/s", "round_trips_per_second", 0), ("p50 µs", "p50_us", 0), ("p99 µs", "p99_us", 0),
        ("CPU µs/rt L+F", "total_cpu_us_per_round_trip", 1),
    ]
    out += pad("transport", 9, left: true) + " " + pad("workload", 10, left: true)
    for c in spread { out += " " + pad(c.0, 17) }
    out += "\n"
    for s in summaries {
        out += pad(s.transport, 9, left: true) + " " + pad(s.workload, 10, left: true)
        for c in spread { out += " " + pad(fmt(s.min[c.1]!, c.2) + "–" + fmt(s.max[c.1]!, c.2), 17) }
        out += "\n"
    }
    let byKey = Dictionary(uniqueKeysWithValues: summaries.map { ($0.workload + "/" + $0.transport, $0) })
    var ratios = ""
    for w in ["latency", "throughput", "batched"] {
        guard let g = byKey[w + "/grpc"], let n = byKey[w + "/nio"] else { continue }
        func r(_ m: String) -> String { fmt(n.median[m]! / g.median[m]!, 2) }
        ratios += pad("", 9) + " " + pad(w, 10, left: true)
            + "  rt/s ×\(r("round_trips_per_second"))  p50 ×\(r("p50_us"))  p99 ×\(r("p99_us"))"
            + "  CPU/rt ×\(r("total_cpu_us_per_round_trip"))\n"
    }
    if !ratios.isEmpty { out += "\nnio ÷ grpc (medians)\n" + ratios }
    return out
}
