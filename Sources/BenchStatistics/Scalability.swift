/// One measurement for a scaling fit: throughput `X(N)` with `N` agents.
public struct ScalingPoint: Sendable, Equatable {
    /// Number of agents (or workers, nodes) `N ≥ 1`.
    public let agents: Int
    /// Measured throughput `X(N) > 0`, in any unit (the same for every point).
    public let throughput: Double

    /// A measurement of `throughput` with `agents` agents.
    public init(agents: Int, throughput: Double) {
        self.agents = agents
        self.throughput = throughput
    }
}

/// The scalability model a ``ScalabilityFit`` was fitted with.
public enum ScalabilityModel: Sendable, Equatable {
    /// Amdahl's law: `X(N) = λN / (1 + σ(N − 1))`; `κ` is 0.
    case amdahl
    /// Gunther's Universal Scalability Law: `X(N) = λN / (1 + σ(N − 1) + κN(N − 1))`.
    case universalScalabilityLaw
}

/// A fitted scalability model, for capacity planning.
///
/// `σ` (contention, the serial fraction) and `κ` (coherency / crosstalk) are fitted by ordinary
/// least squares on the linearised form of the USL: with the relative capacity
/// `C(N) = X(N) / X(1)`, `N / C(N) − 1 = σ(N − 1) + κN(N − 1)`, which is linear in `σ` and `κ`
/// (no intercept). Both are constrained to be `≥ 0` (an exact non-negative least-squares solution:
/// when the unconstrained optimum has a negative coefficient, the best fit on the boundary is
/// taken). Amdahl is the same with `κ = 0`. `λ` is `X(1)` (the mean of the `N = 1` points).
///
/// Note that the least squares are done on the transformed values, not on `X(N)`, which weights
/// points with many agents more; this is the usual practice (Gunther, *Guerrilla Capacity
/// Planning*, ch. 5) and exact on noise-free data.
public struct ScalabilityFit: Sendable, Equatable {
    /// The model that was fitted.
    public let model: ScalabilityModel
    /// Contention (serial fraction), `σ ≥ 0`.
    public let sigma: Double
    /// Coherency delay, `κ ≥ 0` (always 0 for ``ScalabilityModel/amdahl``).
    public let kappa: Double
    /// Throughput with one agent, `X(1)`.
    public let lambda: Double

    /// A fit with known coefficients (for example to evaluate a published model).
    public init(model: ScalabilityModel, sigma: Double, kappa: Double, lambda: Double) {
        self.model = model
        self.sigma = sigma
        self.kappa = kappa
        self.lambda = lambda
    }

    /// Fits Amdahl's law to `points`.
    /// - Throws: `BenchStatisticsError.invalidArgument` unless there is at least one point with
    ///   `N = 1` and one with `N > 1`, every `N ≥ 1`, and every throughput finite and positive.
    public static func amdahl(_ points: [ScalingPoint]) throws(BenchStatisticsError) -> ScalabilityFit {
        let data = try LinearisedPoints(points, distinctAgentCountsAboveOne: 1)
        let sigma = data.fitSigmaOnly()
        return ScalabilityFit(model: .amdahl, sigma: sigma, kappa: 0, lambda: data.lambda)
    }

    /// Fits the Universal Scalability Law to `points`.
    /// - Throws: `BenchStatisticsError.invalidArgument` unless there is at least one point with
    ///   `N = 1` and two distinct `N > 1`, every `N ≥ 1`, and every throughput finite and positive.
    public static func universalScalabilityLaw(
        _ points: [ScalingPoint]
    ) throws(BenchStatisticsError) -> ScalabilityFit {
        let data = try LinearisedPoints(points, distinctAgentCountsAboveOne: 2)
        let (sigma, kappa) = data.fitSigmaKappa()
        return ScalabilityFit(model: .universalScalabilityLaw, sigma: sigma, kappa: kappa, lambda: data.lambda)
    }

    /// Relative capacity `C(N) = N / (1 + σ(N − 1) + κN(N − 1))` (speed-up over one agent).
    public func relativeCapacity(agents n: Double) -> Double {
        n / (1 + sigma * (n - 1) + kappa * n * (n - 1))
    }

    /// Predicted throughput `X(N) = λ·C(N)`.
    public func throughput(agents n: Double) -> Double {
        lambda * relativeCapacity(agents: n)
    }

    /// Parallel efficiency `C(N) / N` (1 is perfectly linear scaling).
    public func efficiency(agents n: Double) -> Double {
        relativeCapacity(agents: n) / n
    }

    /// Where throughput peaks, `N* = √((1 − σ) / κ)`; `nil` when `κ = 0` (throughput never falls)
    /// or `σ ≥ 1`.
    public var peakAgents: Double? {
        guard kappa > 0, sigma < 1 else { return nil }
        return ((1 - sigma) / kappa).squareRoot()
    }

    /// The largest number of agents `N ≥ 1` whose efficiency ``efficiency(agents:)`` is still at
    /// least `threshold` — adding one more agent would bring it below.
    ///
    /// Returns `nil` when efficiency never drops below `threshold` (`σ = κ = 0`), or only beyond
    /// 10^15 agents. Efficiency decreases monotonically in `N` for `σ, κ ≥ 0`, so the answer is
    /// the larger root of `κN² + (σ − κ)N − (σ + 1/threshold − 1) = 0`, rounded down.
    /// - Precondition: `0 < threshold ≤ 1`.
    public func agentsBeforeEfficiencyDrops(below threshold: Double = 0.9) -> Int? {
        precondition(threshold > 0 && threshold <= 1, "threshold must be in (0, 1]")
        let slack = 1 / threshold - 1
        let bound: Double
        if kappa > 0 {
            let b = sigma - kappa
            bound = (-b + (b * b + 4 * kappa * (sigma + slack)).squareRoot()) / (2 * kappa)
        } else if sigma > 0 {
            bound = 1 + slack / sigma
        } else {
            return nil
        }
        guard bound.isFinite, bound < 1e15 else { return nil }
        // The closed form can be off by one at the boundary through rounding: settle on integers.
        var n = Swift.max(1, Int(bound.rounded(.down)))
        while n > 1, efficiency(agents: Double(n)) < threshold { n -= 1 }
        while efficiency(agents: Double(n + 1)) >= threshold { n += 1 }
        return n
    }
}

/// Points transformed to `y = N / C(N) − 1`, `a = N − 1`, `b = N(N − 1)`, with their cross sums.
private struct LinearisedPoints {
    let lambda: Double
    let a: [Double], b: [Double], y: [Double]

    init(_ points: [ScalingPoint], distinctAgentCountsAboveOne needed: Int) throws(BenchStatisticsError) {
        for point in points {
            guard point.agents >= 1 else { throw .invalidArgument("agents must be ≥ 1, got \(point.agents)") }
            guard point.throughput.isFinite, point.throughput > 0 else {
                throw .invalidArgument("throughput must be finite and positive, got \(point.throughput)")
            }
        }
        let single = points.filter { $0.agents == 1 }.map(\.throughput)
        guard !single.isEmpty else { throw .invalidArgument("a point with 1 agent is needed for X(1)") }
        let distinct = Set(points.lazy.filter { $0.agents > 1 }.map(\.agents)).count
        guard distinct >= needed else {
            throw .invalidArgument("\(needed) distinct agent counts above 1 are needed, got \(distinct)")
        }
        let lambda = single.reduce(0, +) / Double(single.count)
        self.lambda = lambda
        let fitted = points.filter { $0.agents > 1 }
        a = fitted.map { Double($0.agents - 1) }
        b = fitted.map { Double($0.agents) * Double($0.agents - 1) }
        y = fitted.map { Double($0.agents) / ($0.throughput / lambda) - 1 }
    }

    private func dot(_ u: [Double], _ v: [Double]) -> Double {
        zip(u, v).reduce(0) { $0 + $1.0 * $1.1 }
    }

    private func squaredError(sigma: Double, kappa: Double) -> Double {
        var sum = 0.0
        for i in y.indices {
            let r = y[i] - sigma * a[i] - kappa * b[i]
            sum += r * r
        }
        return sum
    }

    func fitSigmaOnly() -> Double {
        Swift.max(0, dot(a, y) / dot(a, a))
    }

    func fitSigmaKappa() -> (Double, Double) {
        let saa = dot(a, a), sab = dot(a, b), sbb = dot(b, b)
        let say = dot(a, y), sby = dot(b, y)
        let det = saa * sbb - sab * sab
        if det > 0 {
            let sigma = (say * sbb - sby * sab) / det
            let kappa = (saa * sby - sab * say) / det
            if sigma >= 0, kappa >= 0 { return (sigma, kappa) }
        }
        // Non-negative least squares in two variables: the optimum lies on a boundary.
        let onSigma = (Swift.max(0, say / saa), 0.0)
        let onKappa = (0.0, Swift.max(0, sby / sbb))
        return squaredError(sigma: onSigma.0, kappa: onSigma.1) <= squaredError(sigma: onKappa.0, kappa: onKappa.1)
            ? onSigma : onKappa
    }
}
