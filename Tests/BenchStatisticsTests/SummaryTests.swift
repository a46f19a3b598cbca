import BenchStatistics
import Testing

@Suite struct SummaryTests {
    // Reference values from numpy 2.4.6:
    // python3 -c "import numpy as np; a=[12.0, 15.5, 9.25, 30.0, 11.0, 14.75, 13.0, 10.5, 100.0, 12.25];
    //   print(repr(np.mean(a)), repr(np.std(a, ddof=1)), repr(np.std(a, ddof=1)/np.mean(a)),
    //   [repr(x) for x in np.percentile(a, [50, 90, 99, 99.9])])"
    @Test("a small skewed sample matches numpy (mean, ddof=1 std, CV, linear percentiles)")
    func smallSampleMatchesNumpy() throws {
        let s = try Summary([12.0, 15.5, 9.25, 30.0, 11.0, 14.75, 13.0, 10.5, 100.0, 12.25])
        #expect(s.count == 10)
        #expect(isClose(s.mean, 22.825))
        #expect(isClose(s.standardDeviation, 27.74463161286041))
        #expect(isClose(s.coefficientOfVariation, 1.215536981943501))
        #expect(s.min == 9.25)
        #expect(s.max == 100.0)
        #expect(isClose(s.p50, 12.625))
        #expect(isClose(s.p90, 36.99999999999997))
        #expect(isClose(s.p99, 93.70000000000002))
        #expect(isClose(s.p999, 99.3700000000001))
    }

    // python3 -c "import numpy as np; b=[float((i*7919) % 1009)/4 for i in range(1,1001)];
    //   print(repr(np.mean(b)), repr(np.std(b, ddof=1)), [repr(x) for x in np.percentile(b, [50, 90, 99, 99.9])])"
    @Test("a 1000-value sample matches numpy")
    func largeSampleMatchesNumpy() throws {
        let values = (1...1000).map { Double(($0 * 7919) % 1009) / 4 }
        let s = try Summary(values)
        #expect(s.count == 1000)
        #expect(isClose(s.mean, 126.2615))
        #expect(isClose(s.standardDeviation, 72.77477781509221))
        #expect(isClose(s.p50, 126.375))
        #expect(isClose(s.p90, 226.775))
        #expect(isClose(s.p99, 249.5025))
        #expect(isClose(s.p999, 251.75025000000002))
    }

    // python3 -c "import numpy as np; print(np.percentile([3.0, 1.0], [0, 50, 90, 99.9, 100]))"
    // -> [1. 2. 2.8 2.998 3.]
    @Test("percentiles interpolate linearly between the closest ranks, ends are min and max")
    func percentileInterpolates() {
        let sorted = [1.0, 3.0]
        #expect(Summary.percentile(sorted: sorted, 0) == 1)
        #expect(Summary.percentile(sorted: sorted, 0.5) == 2)
        #expect(isClose(Summary.percentile(sorted: sorted, 0.9), 2.8))
        #expect(isClose(Summary.percentile(sorted: sorted, 0.999), 2.998))
        #expect(Summary.percentile(sorted: sorted, 1) == 3)
        #expect(Summary.percentile(sorted: [7], 0.99) == 7)
    }

    @Test("fewer than two values, or a NaN, are refused")
    func refusesBadSamples() {
        #expect(throws: BenchStatisticsError.notEnoughSamples(needed: 2, got: 1)) { try Summary([1]) }
        #expect(throws: BenchStatisticsError.notEnoughSamples(needed: 2, got: 0)) { try Summary([]) }
        #expect(throws: BenchStatisticsError.nonFiniteSample) { try Summary([1, .nan, 2]) }
        #expect(throws: BenchStatisticsError.nonFiniteSample) { try Summary([1, .infinity]) }
    }

    @Test("noise warning: above 10 % CV with the CV in the message, nothing at or below")
    func noiseWarningThreshold() throws {
        let noisy = try Summary([12.0, 15.5, 9.25, 30.0, 11.0, 14.75, 13.0, 10.5, 100.0, 12.25])
        #expect(noiseWarning(noisy) == "this figure is too noisy to compare: CV 121.6 %")
        // [9, 11]: sd √2, CV 14.1 %.
        #expect(noiseWarning(try Summary([9, 11])) == "this figure is too noisy to compare: CV 14.1 %")
        // [9.5, 10.5]: CV 7.1 %.
        #expect(noiseWarning(try Summary([9.5, 10.5])) == nil)
        let constant = try Summary([5, 5, 5])
        #expect(constant.standardDeviation == 0 && constant.coefficientOfVariation == 0)
        #expect(noiseWarning(constant) == nil)
        // Mean 0 with spread: CV undefined, so it must warn rather than pass silently.
        #expect(noiseWarning(try Summary([-1, 1])) != nil)
    }
}

@Suite struct SplitMix64Tests {
    // Reference outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c), computed in Python.
    @Test("matches the reference SplitMix64 sequence")
    func referenceSequence() {
        var g = SplitMix64(seed: 0)
        #expect(g.next() == 0xE220_A839_7B1D_CDAF)
        #expect(g.next() == 0x6E78_9E6A_A1B9_65F4)
        #expect(g.next() == 0x06C4_5D18_8009_454F)
    }

    @Test("bounded indices stay in range and are close to uniform")
    func boundedIndicesAreUniform() {
        var g = SplitMix64(seed: 7)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<100_000 { counts[g.nextIndex(below: 10)] += 1 }
        // Expected 10,000 each; sd ≈ 95, so ±500 is > 5 sd.
        #expect(counts.allSatisfy { abs($0 - 10_000) < 500 }, "\(counts)")
        for _ in 0..<1000 {
            let u = g.nextUnitDouble()
            #expect(u >= 0 && u < 1)
        }
    }
}
