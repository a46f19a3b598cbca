import BenchStatistics
import Testing

@Suite struct ScalabilityTests {
    static let agents = [1, 2, 4, 8, 16, 32, 64]

    static func usl(sigma: Double, kappa: Double, lambda: Double, _ n: Int) -> Double {
        let n = Double(n)
        return lambda * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))
    }

    static func points(sigma: Double, kappa: Double, lambda: Double = 250) -> [ScalingPoint] {
        agents.map { ScalingPoint(agents: $0, throughput: usl(sigma: sigma, kappa: kappa, lambda: lambda, $0)) }
    }

    @Test("USL recovers σ and κ from noise-free data within 1e-6", arguments: [
        (0.05, 0.001), (0.2, 0.0), (0.0, 0.002), (0.01, 0.0001),
    ])
    func uslExact(sigma: Double, kappa: Double) throws {
        let fit = try ScalabilityFit.universalScalabilityLaw(Self.points(sigma: sigma, kappa: kappa))
        #expect(abs(fit.sigma - sigma) < 1e-6, "σ \(fit.sigma)")
        #expect(abs(fit.kappa - kappa) < 1e-6, "κ \(fit.kappa)")
        #expect(fit.lambda == 250)
        #expect(fit.model == .universalScalabilityLaw)
        #expect(isClose(fit.throughput(agents: 10), Self.usl(sigma: sigma, kappa: kappa, lambda: 250, 10), relative: 1e-6))
    }

    @Test("Amdahl recovers σ from noise-free data within 1e-6")
    func amdahlExact() throws {
        let fit = try ScalabilityFit.amdahl(Self.points(sigma: 0.1, kappa: 0))
        #expect(abs(fit.sigma - 0.1) < 1e-6)
        #expect(fit.kappa == 0)
        #expect(fit.model == .amdahl)
    }

    @Test("with ±1 % seeded noise the fit is close: σ within 0.01, κ within 25 %")
    func uslNoisy() throws {
        for trial in 0..<20 {
            var draw = Draw(seed: 300 + UInt64(trial))
            let noisy = Self.points(sigma: 0.05, kappa: 0.001).map {
                ScalingPoint(agents: $0.agents, throughput: $0.throughput * draw.uniform(0.99, 1.01))
            }
            let fit = try ScalabilityFit.universalScalabilityLaw(noisy)
            #expect(abs(fit.sigma - 0.05) < 0.01, "trial \(trial): σ \(fit.sigma)")
            #expect(abs(fit.kappa - 0.001) < 0.00025, "trial \(trial): κ \(fit.kappa)")
        }
    }

    @Test("super-linear data would give σ < 0: it is clamped to 0 and κ refitted")
    func clampsNegativeSigma() throws {
        let fit = try ScalabilityFit.universalScalabilityLaw(Self.points(sigma: -0.02, kappa: 0.0005))
        #expect(fit.sigma == 0)
        #expect(fit.kappa > 0)
        // (σ = −0.01 keeps the denominator positive up to N = 64.)
        let flat = try ScalabilityFit.amdahl(Self.points(sigma: -0.01, kappa: 0))
        #expect(flat.sigma == 0)
    }

    @Test("agents before efficiency drops below 0.9: hand-checked cases")
    func agentsBeforeDropKnown() {
        // Amdahl σ = 0.1: 1 + 0.1(N − 1) ≤ 1/0.9 ⇔ N ≤ 2.11.
        #expect(ScalabilityFit(model: .amdahl, sigma: 0.1, kappa: 0, lambda: 1).agentsBeforeEfficiencyDrops() == 2)
        // USL σ = 0.05, κ = 0.001: N = 3 gives 0.106 ≤ 0.111, N = 4 gives 0.162.
        let usl = ScalabilityFit(model: .universalScalabilityLaw, sigma: 0.05, kappa: 0.001, lambda: 1)
        #expect(usl.agentsBeforeEfficiencyDrops(below: 0.9) == 3)
        #expect(isClose(usl.peakAgents ?? 0, 950.0.squareRoot()))
        #expect(ScalabilityFit(model: .amdahl, sigma: 0, kappa: 0, lambda: 1).agentsBeforeEfficiencyDrops() == nil)
    }

    @Test("agents before efficiency drops agrees with a brute-force scan", arguments: [
        (0.05, 0.001, 0.9), (0.001, 0.0, 0.9), (0.0, 0.0001, 0.8), (0.3, 0.01, 0.5), (0.02, 0.0002, 0.95),
        (0.5, 0.5, 0.9), (0.1, 0.0, 1.0),
    ])
    func agentsBeforeDropBruteForce(sigma: Double, kappa: Double, threshold: Double) {
        let fit = ScalabilityFit(model: .universalScalabilityLaw, sigma: sigma, kappa: kappa, lambda: 1)
        var expected = 1
        while true {
            let n = Double(expected + 1)
            if 1 / (1 + sigma * (n - 1) + kappa * n * (n - 1)) < threshold { break }
            expected += 1
        }
        #expect(fit.agentsBeforeEfficiencyDrops(below: threshold) == expected)
    }

    @Test("fits refuse data without N = 1 or with too few agent counts")
    func refusesBadData() {
        #expect(throws: BenchStatisticsError.self) {
            try ScalabilityFit.amdahl([ScalingPoint(agents: 2, throughput: 2), ScalingPoint(agents: 4, throughput: 3)])
        }
        #expect(throws: BenchStatisticsError.self) {
            try ScalabilityFit.universalScalabilityLaw([
                ScalingPoint(agents: 1, throughput: 1), ScalingPoint(agents: 4, throughput: 3),
            ])
        }
        #expect(throws: BenchStatisticsError.self) {
            try ScalabilityFit.amdahl([ScalingPoint(agents: 1, throughput: 1), ScalingPoint(agents: 2, throughput: 0)])
        }
    }
}
