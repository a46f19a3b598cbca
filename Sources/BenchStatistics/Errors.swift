/// Why a statistic could not be computed.
public enum BenchStatisticsError: Error, Equatable, Sendable {
    /// The sample has fewer values than the statistic needs.
    case notEnoughSamples(needed: Int, got: Int)
    /// The sample holds a NaN or an infinity.
    case nonFiniteSample
    /// An argument is out of its documented range (named in the payload).
    case invalidArgument(String)
}

func validate(_ samples: [Double], atLeast needed: Int) throws(BenchStatisticsError) {
    guard samples.count >= needed else {
        throw .notEnoughSamples(needed: needed, got: samples.count)
    }
    guard samples.allSatisfy(\.isFinite) else { throw .nonFiniteSample }
}
