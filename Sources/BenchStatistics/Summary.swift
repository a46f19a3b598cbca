/// Descriptive statistics of one sample (for example the latencies of one benchmark phase).
///
/// Percentiles use **linear interpolation between the closest ranks**, the method numpy's
/// `np.percentile` / `np.quantile` use by default (`method="linear"`, Hyndman and Fan's type 7):
/// with the values sorted ascending as `x[0] ... x[n-1]`, the `p`-quantile (`0 ≤ p ≤ 1`) is at the
/// fractional rank `h = (n - 1) * p`, and is `x[⌊h⌋] + (h - ⌊h⌋) * (x[⌊h⌋ + 1] - x[⌊h⌋])`.
/// So p50 of an even-sized sample is the mean of the two middle values, p0 is the minimum and p100
/// the maximum, and a percentile never lies outside the observed values.
public struct Summary: Sendable, Equatable {
    /// Number of values.
    public let count: Int
    /// Arithmetic mean.
    public let mean: Double
    /// Sample standard deviation (Bessel-corrected: divides by `n - 1`).
    public let standardDeviation: Double
    /// Coefficient of variation, `standardDeviation / |mean|`, as a fraction (0.1 is 10 %).
    /// Infinite when the mean is 0 and the values are not all equal; 0 when all values are equal.
    public let coefficientOfVariation: Double
    /// Smallest value.
    public let min: Double
    /// Largest value.
    public let max: Double
    /// Median (50th percentile).
    public let p50: Double
    /// 90th percentile.
    public let p90: Double
    /// 99th percentile.
    public let p99: Double
    /// 99.9th percentile.
    public let p999: Double

    /// Summarises `samples`.
    /// - Throws: `BenchStatisticsError.notEnoughSamples` with fewer than 2 values (the sample standard
    ///   deviation needs two), `.nonFiniteSample` if a value is NaN or infinite.
    public init(_ samples: [Double]) throws(BenchStatisticsError) {
        try validate(samples, atLeast: 2)
        let sorted = samples.sorted()
        let n = Double(sorted.count)
        count = sorted.count
        // Two-pass algorithm: the mean first, then squared deviations from it, which is
        // accurate enough for benchmark-sized samples and avoids the cancellation of Σx² − n·mean².
        let mean = sorted.reduce(0, +) / n
        let squares = sorted.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
        let sd = (squares / (n - 1)).squareRoot()
        self.mean = mean
        standardDeviation = sd
        if sd == 0 {
            coefficientOfVariation = 0
        } else {
            coefficientOfVariation = mean == 0 ? .infinity : sd / Swift.abs(mean)
        }
        min = sorted[0]
        max = sorted[sorted.count - 1]
        p50 = Summary.percentile(sorted: sorted, 0.5)
        p90 = Summary.percentile(sorted: sorted, 0.9)
        p99 = Summary.percentile(sorted: sorted, 0.99)
        p999 = Summary.percentile(sorted: sorted, 0.999)
    }

    /// The `p`-quantile of an **ascending-sorted**, non-empty array, by linear interpolation between
    /// the closest ranks (numpy's default; see the type's documentation). `p` is a fraction:
    /// 0.99 for p99.
    /// - Precondition: `sorted` is non-empty and sorted ascending; `0 ≤ p ≤ 1`.
    public static func percentile(sorted: [Double], _ p: Double) -> Double {
        precondition(!sorted.isEmpty, "percentile of an empty sample")
        precondition(p >= 0 && p <= 1, "p must be in [0, 1]")
        let h = Double(sorted.count - 1) * p
        let lower = Int(h.rounded(.down))
        let upper = Swift.min(lower + 1, sorted.count - 1)
        let fraction = h - Double(lower)
        return sorted[lower] + fraction * (sorted[upper] - sorted[lower])
    }
}

/// A warning to print next to a figure whose spread makes it unfit for comparisons, or `nil`.
///
/// Returns `"this figure is too noisy to compare: CV x %"` (CV with one decimal) when the
/// coefficient of variation exceeds `maxCV` (default 10 %), and also when the CV is not finite
/// (mean 0 with a non-zero spread).
public func noiseWarning(_ summary: Summary, maxCV: Double = 0.10) -> String? {
    let cv = summary.coefficientOfVariation
    guard !(cv <= maxCV) else { return nil }
    guard cv.isFinite else { return "this figure is too noisy to compare: CV undefined (mean is 0)" }
    return "this figure is too noisy to compare: CV \(formatOneDecimal(cv * 100)) %"
}

/// `value` rounded to one decimal, without Foundation ("12.3", "-0.5", "150.0").
func formatOneDecimal(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    let sign = tenths < 0 ? "-" : ""
    let magnitude = tenths.magnitude
    return "\(sign)\(magnitude / 10).\(magnitude % 10)"
}
