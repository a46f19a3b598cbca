/// A point estimate with a two-sided confidence interval.
public struct ConfidenceInterval: Sendable, Equatable {
    /// Lower bound of the interval.
    public let lower: Double
    /// The point estimate computed from the original sample(s) (not from the resamples).
    public let median: Double
    /// Upper bound of the interval.
    public let upper: Double
    /// The confidence level the interval was built for, e.g. 0.95.
    public let confidence: Double

    /// Creates an interval; used by this module and by callers that load stored results.
    public init(lower: Double, median: Double, upper: Double, confidence: Double) {
        self.lower = lower
        self.median = median
        self.upper = upper
        self.confidence = confidence
    }

    /// `upper - lower`.
    public var width: Double { upper - lower }

    /// Whether `value` lies in `[lower, upper]`.
    public func contains(_ value: Double) -> Bool { lower <= value && value <= upper }
}

/// The median of `samples` with linear interpolation (the mean of the two middle values when the
/// count is even), like `np.median`.
/// - Throws: `BenchStatisticsError` if `samples` is empty or holds a non-finite value.
public func median(_ samples: [Double]) throws(BenchStatisticsError) -> Double {
    try validate(samples, atLeast: 1)
    return Summary.percentile(sorted: samples.sorted(), 0.5)
}

/// A percentile-bootstrap confidence interval for the median of `samples`.
///
/// Draws `resamples` samples of the same size with replacement from `samples` (using
/// ``SplitMix64`` seeded with `seed`, so the result is reproducible), takes the median of each,
/// and returns the `(1 - confidence) / 2` and `(1 + confidence) / 2` percentiles of those medians
/// (linear interpolation, as in ``Summary``) as `lower` and `upper`. `median` is the median of
/// `samples` itself.
///
/// With very small samples the bootstrap distribution of the median is coarse and the interval is
/// only approximate; use at least 20 values for figures that will be published.
/// - Throws: `BenchStatisticsError` if `samples` is empty or not finite, `confidence` is not in
///   `(0, 1)`, or `resamples < 1`.
public func bootstrapMedianCI(
    _ samples: [Double], confidence: Double = 0.95, resamples: Int = 10_000, seed: UInt64
) throws(BenchStatisticsError) -> ConfidenceInterval {
    try validate(samples, atLeast: 1)
    try validateBootstrap(confidence: confidence, resamples: resamples)
    var generator = SplitMix64(seed: seed)
    var resampler = MedianResampler(samples)
    var medians = [Double](repeating: 0, count: resamples)
    for index in 0..<resamples {
        medians[index] = resampler.resampledMedian(using: &generator)
    }
    return interval(of: &medians, estimate: resampler.sampleMedian, confidence: confidence)
}

func validateBootstrap(confidence: Double, resamples: Int) throws(BenchStatisticsError) {
    guard confidence > 0, confidence < 1 else {
        throw .invalidArgument("confidence must be in (0, 1), got \(confidence)")
    }
    guard resamples >= 1 else { throw .invalidArgument("resamples must be at least 1, got \(resamples)") }
}

/// The percentile interval of bootstrap replicates (sorted in place).
func interval(of replicates: inout [Double], estimate: Double, confidence: Double) -> ConfidenceInterval {
    replicates.sort()
    let alpha = 1 - confidence
    return ConfidenceInterval(
        lower: Summary.percentile(sorted: replicates, alpha / 2),
        median: estimate,
        upper: Summary.percentile(sorted: replicates, 1 - alpha / 2),
        confidence: confidence)
}

/// Draws medians of resamples with replacement, reusing one buffer.
struct MedianResampler {
    let samples: [Double]
    let sampleMedian: Double
    private var buffer: [Double]

    init(_ samples: [Double]) {
        self.samples = samples
        sampleMedian = Summary.percentile(sorted: samples.sorted(), 0.5)
        buffer = samples
    }

    mutating func resampledMedian(using generator: inout SplitMix64) -> Double {
        let n = samples.count
        for index in 0..<n {
            buffer[index] = samples[generator.nextIndex(below: n)]
        }
        buffer.sort()
        return Summary.percentile(sorted: buffer, 0.5)
    }
}
