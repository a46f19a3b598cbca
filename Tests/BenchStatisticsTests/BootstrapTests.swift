import BenchStatistics
import Foundation
import Testing

@Suite struct BootstrapTests {
    /// Fewer resamples than the default keep the 100-trial tests quick in debug builds; the
    /// interval's coverage does not depend on the resample count once it is in the thousands.
    static let resamples = 2000

    @Test("95 % interval contains the true median of Exp(1) (ln 2) in ≥ 90 of 100 seeded trials")
    func coverage() throws {
        var covered = 0
        for trial in 0..<100 {
            var draw = Draw(seed: 1000 + UInt64(trial))
            let sample = (0..<51).map { _ in draw.exponential(mean: 1) }
            let ci = try bootstrapMedianCI(sample, confidence: 0.95, resamples: Self.resamples, seed: UInt64(trial))
            if ci.contains(log(2.0)) { covered += 1 }
        }
        #expect(covered >= 90, "covered \(covered) of 100")
    }

    @Test("the interval narrows as n grows, about as 1/√n, and has the width theory predicts")
    func narrowsWithSampleSize() throws {
        func meanWidth(_ n: Int) throws -> Double {
            var total = 0.0
            for trial in 0..<10 {
                var draw = Draw(seed: 50_000 + UInt64(n * 100 + trial))
                let sample = (0..<n).map { _ in draw.exponential(mean: 1) }
                total += try bootstrapMedianCI(sample, resamples: Self.resamples, seed: UInt64(trial)).width
            }
            return total / 10
        }
        let small = try meanWidth(25)
        let large = try meanWidth(400)
        // 16× the data should give about a quarter of the width.
        #expect(large < 0.5 * small, "widths \(small) at n=25, \(large) at n=400")
        // Asymptotic sd of the median of Exp(1): 1 / (2 f(ln 2) √n) = 1/√n; 95 % width ≈ 3.92/√n.
        let expected = 3.92 / 400.0.squareRoot()
        #expect(large > 0.6 * expected && large < 1.5 * expected, "width \(large), expected ≈ \(expected)")
    }

    @Test("same seed, same interval; the point estimate is the sample median; bounds are ordered")
    func reproducibleAndOrdered() throws {
        var draw = Draw(seed: 3)
        let sample = draw.latencies(40)
        let a = try bootstrapMedianCI(sample, resamples: 500, seed: 11)
        let b = try bootstrapMedianCI(sample, resamples: 500, seed: 11)
        #expect(a == b)
        // The bounds are order statistics of the sample (or their midpoints), so two seeds can give
        // the same interval; over 20 seeds the seed must make some difference.
        var distinct: [ConfidenceInterval] = []
        for seed in UInt64(100)..<120 {
            let ci = try bootstrapMedianCI(sample, resamples: 500, seed: seed)
            if !distinct.contains(ci) { distinct.append(ci) }
        }
        #expect(distinct.count > 1)
        #expect(a.median == (try median(sample)))
        #expect(a.lower <= a.median && a.median <= a.upper)
        #expect(a.lower < a.upper)
        #expect(a.confidence == 0.95)
    }

    @Test("a higher confidence gives a wider interval")
    func widerAtHigherConfidence() throws {
        var draw = Draw(seed: 4)
        let sample = draw.latencies(60)
        let ci80 = try bootstrapMedianCI(sample, confidence: 0.80, resamples: 2000, seed: 1)
        let ci99 = try bootstrapMedianCI(sample, confidence: 0.99, resamples: 2000, seed: 1)
        #expect(ci99.lower < ci80.lower && ci80.upper < ci99.upper)
    }

    @Test("bad arguments are refused")
    func refusesBadArguments() {
        #expect(throws: BenchStatisticsError.self) { try bootstrapMedianCI([], seed: 1) }
        #expect(throws: BenchStatisticsError.self) { try bootstrapMedianCI([1, 2], confidence: 1, seed: 1) }
        #expect(throws: BenchStatisticsError.self) { try bootstrapMedianCI([1, 2], resamples: 0, seed: 1) }
        #expect(throws: BenchStatisticsError.nonFiniteSample) { try bootstrapMedianCI([1, .nan], seed: 1) }
    }
}

@Suite struct CompareTests {
    static let resamples = 1000

    @Test("A/A: two samples of the same distribution are .same in ≥ 95 of 100 seeded trials")
    func aaIsSame() throws {
        var same = 0
        for trial in 0..<100 {
            var draw = Draw(seed: 7_000 + UInt64(trial))
            let baseline = draw.latencies(50)
            let candidate = draw.latencies(50)
            let result = try compare(
                baseline: baseline, candidate: candidate, resamples: Self.resamples, seed: UInt64(trial))
            if result.verdict == .same { same += 1 }
        }
        #expect(same >= 95, "same in \(same) of 100")
    }

    @Test("+20 % delay is .worse (lower is better) and .better when higher is better; −20 % is .better")
    func twentyPercentDelay() throws {
        for trial in 0..<20 {
            var draw = Draw(seed: 9_000 + UInt64(trial))
            let baseline = draw.latencies(50)
            let slower = draw.latencies(50, scale: 1.2)
            let faster = draw.latencies(50, scale: 0.8)
            let seed = UInt64(trial)
            let worse = try compare(baseline: baseline, candidate: slower, resamples: Self.resamples, seed: seed)
            #expect(worse.verdict == .worse, "trial \(trial): \(worse)")
            #expect(worse.difference.lower > 0)
            #expect(worse.relativeChange > 0.1 && worse.relativeChange < 0.3)
            let higher = try compare(
                baseline: baseline, candidate: slower, direction: .higherIsBetter, resamples: Self.resamples,
                seed: seed)
            #expect(higher.verdict == .better)
            let better = try compare(baseline: baseline, candidate: faster, resamples: Self.resamples, seed: seed)
            #expect(better.verdict == .better, "trial \(trial): \(better)")
        }
    }

    @Test("a clear but small change (+3 %) is .same under the 5 % threshold, .worse under 1 %")
    func smallChangeBelowThreshold() throws {
        var draw = Draw(seed: 5)
        let baseline = (0..<50).map { _ in draw.uniform(99.9, 100.1) }
        let candidate = (0..<50).map { _ in draw.uniform(102.9, 103.1) }
        let result = try compare(baseline: baseline, candidate: candidate, resamples: Self.resamples, seed: 1)
        #expect(result.difference.lower > 0, "the interval must exclude zero: \(result.difference)")
        #expect(result.verdict == .same)
        let strict = try compare(
            baseline: baseline, candidate: candidate, resamples: Self.resamples, noiseThreshold: 0.01, seed: 1)
        #expect(strict.verdict == .worse)
    }

    @Test("a large change whose interval contains zero is .same")
    func noisyLargeChangeIsSame() throws {
        let baseline: [Double] = [1, 100, 1, 100, 50]
        let candidate: [Double] = [1, 100, 1, 100, 60]
        let result = try compare(baseline: baseline, candidate: candidate, resamples: Self.resamples, seed: 1)
        #expect(isClose(result.relativeChange, 0.2))
        #expect(result.difference.lower < 0 && result.difference.upper > 0, "\(result.difference)")
        #expect(result.verdict == .same)
    }

    @Test("the estimate is the difference of the sample medians")
    func estimateIsDifferenceOfMedians() throws {
        let result = try compare(baseline: [1, 2, 3, 4], candidate: [2, 4, 6], resamples: 100, seed: 1)
        #expect(result.baselineMedian == 2.5)
        #expect(result.candidateMedian == 4)
        #expect(result.difference.median == 1.5)
        #expect(isClose(result.relativeChange, 0.6))
    }
}
