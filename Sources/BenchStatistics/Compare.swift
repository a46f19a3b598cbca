/// Which direction of a metric is an improvement.
public enum MetricDirection: Sendable, Equatable {
    /// Latencies, durations, costs: a smaller value is better.
    case lowerIsBetter
    /// Throughput, operations per second: a larger value is better.
    case higherIsBetter
}

/// What a comparison concludes.
public enum Verdict: Sendable, Equatable {
    /// The candidate is better by more than the noise threshold, and the interval excludes zero.
    case better
    /// No difference that is both statistically clear and larger than the noise threshold.
    case same
    /// The candidate is worse by more than the noise threshold, and the interval excludes zero.
    case worse
}

/// The result of ``compare(baseline:candidate:direction:confidence:resamples:noiseThreshold:seed:)``.
public struct Comparison: Sendable, Equatable {
    /// Median of the baseline sample.
    public let baselineMedian: Double
    /// Median of the candidate sample.
    public let candidateMedian: Double
    /// `candidateMedian - baselineMedian` (as `median`) with its bootstrap confidence interval.
    public let difference: ConfidenceInterval
    /// `(candidateMedian - baselineMedian) / |baselineMedian|`, a fraction (0.2 is +20 %).
    /// 0 when the medians are equal; infinite when only the baseline median is 0.
    public let relativeChange: Double
    /// The conclusion; see ``compare(baseline:candidate:direction:confidence:resamples:noiseThreshold:seed:)``.
    public let verdict: Verdict
}

/// Compares the medians of two independent samples of one metric.
///
/// The difference of medians, `candidate − baseline`, gets a percentile-bootstrap confidence
/// interval: each of `resamples` rounds resamples both samples independently with replacement
/// (seeded ``SplitMix64``, so the result is reproducible) and records the difference of their
/// medians. The verdict is `.same` **unless both** the interval excludes zero **and** the relative
/// change of the medians exceeds `noiseThreshold` in magnitude (default 5 %, the run-to-run noise
/// a benchmark on shared hardware typically shows). Otherwise the sign of the change and
/// `direction` decide between `.better` and `.worse`.
/// - Throws: `BenchStatisticsError` if a sample is empty or not finite, `confidence` is not in
///   `(0, 1)`, `resamples < 1` or `noiseThreshold < 0`.
public func compare(
    baseline: [Double], candidate: [Double], direction: MetricDirection = .lowerIsBetter,
    confidence: Double = 0.95, resamples: Int = 10_000, noiseThreshold: Double = 0.05, seed: UInt64 = 0
) throws(BenchStatisticsError) -> Comparison {
    try validate(baseline, atLeast: 1)
    try validate(candidate, atLeast: 1)
    try validateBootstrap(confidence: confidence, resamples: resamples)
    guard noiseThreshold >= 0 else { throw .invalidArgument("noiseThreshold must be ≥ 0, got \(noiseThreshold)") }

    var generator = SplitMix64(seed: seed)
    var baseResampler = MedianResampler(baseline)
    var candidateResampler = MedianResampler(candidate)
    var differences = [Double](repeating: 0, count: resamples)
    for index in 0..<resamples {
        let base = baseResampler.resampledMedian(using: &generator)
        differences[index] = candidateResampler.resampledMedian(using: &generator) - base
    }
    let baseMedian = baseResampler.sampleMedian
    let candidateMedian = candidateResampler.sampleMedian
    let delta = candidateMedian - baseMedian
    let ci = interval(of: &differences, estimate: delta, confidence: confidence)
    let relative = delta == 0 ? 0 : delta / Swift.abs(baseMedian)

    let excludesZero = ci.lower > 0 || ci.upper < 0
    let verdict: Verdict
    if excludesZero, Swift.abs(relative) > noiseThreshold {
        let increased = delta > 0
        verdict = (increased == (direction == .higherIsBetter)) ? .better : .worse
    } else {
        verdict = .same
    }
    return Comparison(
        baselineMedian: baseMedian, candidateMedian: candidateMedian, difference: ci,
        relativeChange: relative, verdict: verdict)
}
