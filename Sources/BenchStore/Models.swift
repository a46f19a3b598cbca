public import Foundation

/// How a run ended (or that it has not ended yet).
public enum RunStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Started and not finished: still going, or the process died without recording an end.
    case running
    /// Every step ran; the samples are complete.
    case completed
    /// A step failed; the samples stored so far are kept.
    case failed
    /// Stopped by the user (Ctrl-C) or a signal; the samples stored so far are kept.
    case interrupted
}

/// One `bench` run: what was run, when, on which machine and software, and with which parameters.
/// Its raw samples are stored separately (`Sample`, linked by `id`).
public struct RunInfo: Sendable, Hashable, Codable {
    /// Assigned by the store (`RunStore.beginRun` returns it); whatever is set here before
    /// `beginRun` is ignored.
    public var id: Int64
    /// A unique, human-chosen name such as "baseline-2026-11", usable wherever a run id is
    /// (`bench compare baseline-2026-11 latest`). Nil when untagged. Must not be empty, all digits,
    /// or start with "latest" (those would be ambiguous with ids and `latest`).
    public var tag: String?
    /// The phase run: "baseline", "overhead", "scaling", "failover", "chaos", "all", ...
    public var phase: String
    public var startedAt: Date
    /// Nil while the run is `running`.
    public var finishedAt: Date?
    public var status: RunStatus
    /// The run's parameters (sizes, agents, repetitions, seeds, ...) as given on the command line
    /// or defaulted; stored as JSON text.
    public var parameters: [String: String]
    /// `git rev-parse HEAD` of the build (with "-dirty" appended if you like); "" if unknown.
    public var gitCommit: String
    /// Host name.
    public var host: String
    /// CPU model name (/proc/cpuinfo "model name").
    public var cpuModel: String
    /// Logical cores online.
    public var cores: Int
    /// Physical memory in bytes (stored as a signed 64-bit integer; values above 2⁶³ − 1 are clamped).
    public var memoryBytes: UInt64
    /// `openblas_get_config()` version, e.g. "0.3.26".
    public var openBLASVersion: String
    /// The OpenBLAS kernel in use (`openblas_get_corename()`), e.g. "Haswell", "SkylakeX".
    public var openBLASKernel: String
    /// `swift --version` first line, or the compiler version the binary was built with.
    public var swiftVersion: String
    /// The cluster configuration the run used, as YAML text.
    public var clusterConfig: String
    /// Free text: warnings (noisy neighbours, fallback kernel), reasons for a failure, ...
    public var notes: String

    /// A run description; every field but `phase` and `startedAt` has a default so callers fill
    /// only what they know.
    public init(
        id: Int64 = 0, tag: String? = nil, phase: String, startedAt: Date, finishedAt: Date? = nil,
        status: RunStatus = .running, parameters: [String: String] = [:], gitCommit: String = "",
        host: String = "", cpuModel: String = "", cores: Int = 0, memoryBytes: UInt64 = 0,
        openBLASVersion: String = "", openBLASKernel: String = "", swiftVersion: String = "",
        clusterConfig: String = "", notes: String = ""
    ) {
        self.id = id
        self.tag = tag
        self.phase = phase
        self.startedAt = startedAt
        self.finishedAt = finishedAt
        self.status = status
        self.parameters = parameters
        self.gitCommit = gitCommit
        self.host = host
        self.cpuModel = cpuModel
        self.cores = cores
        self.memoryBytes = memoryBytes
        self.openBLASVersion = openBLASVersion
        self.openBLASKernel = openBLASKernel
        self.swiftVersion = swiftVersion
        self.clusterConfig = clusterConfig
        self.notes = notes
    }
}

/// One raw measurement of a run: every repetition is stored, not only summaries, so statistics can
/// be recomputed and figures redrawn later.
public struct Sample: Sendable, Hashable, Codable {
    /// The run it belongs to (`RunInfo.id`).
    public var runID: Int64
    /// What was measured, snake_case: "gflops", "overhead_percent", "commit_latency_ms",
    /// "throughput", "failover_seconds", ...
    public var metric: String
    /// The value's unit as a chart axis shows it: "GFLOP/s", "ms", "s", "%", "tasks/s".
    public var unit: String
    /// The measurement. NaN is allowed (SQLite stores it as NULL; it reads back as NaN).
    public var value: Double
    /// Repetition number within its configuration (0-based), warm-ups included.
    public var repetition: Int
    /// True for warm-up repetitions: stored, but left out of queries unless asked for
    /// (`RunStore.samples(runID:metric:includeWarmup:)`).
    public var warmup: Bool
    /// Order within the run (the store sorts by it). `RunStore.nextSequence(runID:)` gives the next
    /// free number when samples are added in several batches.
    public var sequence: Int
    /// The configuration the value belongs to: "size", "agents", "threads", "trial", "precision",
    /// ... Stored as JSON text with sorted keys, so SQLite's `json_extract(labels_json, '$.size')`
    /// works in ad-hoc queries.
    public var labels: [String: String]
    /// Seconds since the run started when the value was taken, if meaningful (timelines).
    public var at: Double?

    public init(
        runID: Int64, metric: String, unit: String, value: Double, repetition: Int = 0,
        warmup: Bool = false, sequence: Int, labels: [String: String] = [:], at: Double? = nil
    ) {
        self.runID = runID
        self.metric = metric
        self.unit = unit
        self.value = value
        self.repetition = repetition
        self.warmup = warmup
        self.sequence = sequence
        self.labels = labels
        self.at = at
    }
}

/// The summary of one metric in one configuration of a run (schema v2): what `bench show` and
/// `bench compare` print, stored so they need not recompute bootstrap intervals. The raw samples
/// remain the source of truth. One summary per (run, metric, labels): adding it again replaces it.
public struct MetricSummary: Sendable, Hashable, Codable {
    public var runID: Int64
    public var metric: String
    public var unit: String
    /// The configuration summarised (same keys as the samples' labels, minus per-repetition ones
    /// such as "trial").
    public var labels: [String: String]
    /// Number of samples summarised (warm-ups excluded).
    public var count: Int
    public var median: Double
    /// Lower bound of the confidence interval of the median, if computed.
    public var ciLow: Double?
    /// Upper bound of the confidence interval of the median, if computed.
    public var ciHigh: Double?
    /// The interval's confidence level as a fraction, e.g. 0.95.
    public var confidence: Double?
    public var mean: Double?
    /// Coefficient of variation as a fraction (0.1 is 10 %).
    public var cv: Double?
    public var min: Double?
    public var max: Double?
    public var p90: Double?
    public var p99: Double?

    public init(
        runID: Int64, metric: String, unit: String, labels: [String: String] = [:], count: Int,
        median: Double, ciLow: Double? = nil, ciHigh: Double? = nil, confidence: Double? = nil,
        mean: Double? = nil, cv: Double? = nil, min: Double? = nil, max: Double? = nil,
        p90: Double? = nil, p99: Double? = nil
    ) {
        self.runID = runID
        self.metric = metric
        self.unit = unit
        self.labels = labels
        self.count = count
        self.median = median
        self.ciLow = ciLow
        self.ciHigh = ciHigh
        self.confidence = confidence
        self.mean = mean
        self.cv = cv
        self.min = min
        self.max = max
        self.p90 = p90
        self.p99 = p99
    }
}
