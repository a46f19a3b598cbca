import BenchStatistics
import Foundation

/// Draws test data from known distributions (the library's generator, so trials are reproducible).
struct Draw {
    var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    /// Exponential with mean `mean` (median `mean · ln 2`).
    mutating func exponential(mean: Double) -> Double {
        -mean * log(1 - generator.nextUnitDouble())
    }

    /// Uniform in `[low, high)`.
    mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * generator.nextUnitDouble()
    }

    /// Latencies: 100 plus an exponential tail with mean 20 (median 100 + 20 ln 2, CV about 0.17).
    mutating func latencies(_ count: Int, scale: Double = 1) -> [Double] {
        (0..<count).map { _ in scale * (100 + exponential(mean: 20)) }
    }
}

func isClose(_ a: Double, _ b: Double, relative: Double = 1e-12) -> Bool {
    abs(a - b) <= relative * max(abs(a), abs(b), 1e-300)
}
