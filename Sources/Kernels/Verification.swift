/// What `checkProduct` found about a claimed product C of A·B.
struct ProductCheck: Sendable, Hashable {
    /// Every component of both Freivalds rounds is within its tolerance (false for NaN or ∞).
    var verified: Bool
    /// The largest |C·r − A·(B·r)|ᵢ / toleranceᵢ over both rounds: at most 1 when verified.
    var worstRatio: Double
    /// xᵀ·C·y for the seed's fingerprint vectors, accumulated in Double.
    var fingerprint: Double
}

/// The factor c(n) in the Freivalds tolerance |(C·r)ᵢ − (A·(B·r))ᵢ| ≤ c(n) · (|A|·|B|·|r|)ᵢ.
///
/// Derivation (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.5): a computed product
/// Ĉ = fl(A·B) satisfies |Ĉ − A·B| ≤ γₙ|A||B| with γₙ = n·u/(1 − n·u), u the unit roundoff of the
/// precision, for any order of summation and with or without FMA. The check then computes B·r,
/// A·(B·r) and Ĉ·r in Double (unit roundoff u_d); each of these n-term dot products adds at most
/// γₙ(u_d) times the corresponding magnitude, and |Ĉ| ≤ (1 + γₙ)|A||B|, so
/// |fl(Ĉ·r) − fl(A·fl(B·r))| ≤ (γₙ(u) + 3γₙ(u_d) + O(u²)) · |A||B||r|.
/// For n ≤ 65 536, n·u ≤ 2⁻⁸ so γₙ ≤ 1.004·n·u; the magnitude |A||B||r| is itself computed in
/// Double with relative error below 2n·u_d. A factor 2 covers all of these second-order terms:
/// c(n) = 2·n·(u + 3·u_d). This is a worst-case bound: a correct product never fails it, and a
/// wrong element of C is caught when its error times |rⱼ| exceeds c(n)·(|A||B||r|)ᵢ (about
/// 2·n·u · n²/8: for float32 ≈ 0.004 at n = 64, ≈ 1000 at n = 4096, where entries of C are ≈ √n/3).
func freivaldsToleranceFactor(n: Int, unitRoundoff: Double) -> Double {
    2 * Double(n) * (unitRoundoff + 3 * (Double.ulpOfOne / 2))
}

/// Freivalds' check of C = A·B (two rounds with independent random vectors from the seed) and the
/// fingerprint xᵀ·C·y, in O(n²) with Double accumulation: three passes, over B, C and A.
///
/// `work` must hold `workVectorCount * n` Doubles.
func checkProduct<T: KernelScalar>(
    n: Int, a: UnsafePointer<T>, b: UnsafePointer<T>, c: UnsafePointer<T>, seed: UInt64,
    work: UnsafeMutablePointer<Double>
) -> ProductCheck {
    let r1 = work, r2 = work + n, x = work + 2 * n, y = work + 3 * n
    let br1 = work + 4 * n, br2 = work + 5 * n  // B·r
    let bm1 = work + 6 * n, bm2 = work + 7 * n  // |B|·|r|
    let cr1 = work + 8 * n, cr2 = work + 9 * n  // C·r
    fillUniformVector(r1, count: n, seed: seed, stream: .freivalds1)
    fillUniformVector(r2, count: n, seed: seed, stream: .freivalds2)
    fillUniformVector(x, count: n, seed: seed, stream: .fingerprintX)
    fillUniformVector(y, count: n, seed: seed, stream: .fingerprintY)

    // Pass over B: B·r and |B|·|r| for both rounds.
    for k in 0..<n {
        let row = b + k * n
        var s1 = 0.0, s2 = 0.0, m1 = 0.0, m2 = 0.0
        for j in 0..<n {
            let value = row[j].widened
            let magnitude = abs(value)
            s1 += value * r1[j]
            s2 += value * r2[j]
            m1 += magnitude * abs(r1[j])
            m2 += magnitude * abs(r2[j])
        }
        br1[k] = s1
        br2[k] = s2
        bm1[k] = m1
        bm2[k] = m2
    }

    // Pass over C: C·r for both rounds, and the fingerprint Σᵢ xᵢ (C·y)ᵢ.
    var fingerprint = 0.0
    for i in 0..<n {
        let row = c + i * n
        var s1 = 0.0, s2 = 0.0, sy = 0.0
        for j in 0..<n {
            let value = row[j].widened
            s1 += value * r1[j]
            s2 += value * r2[j]
            sy += value * y[j]
        }
        cr1[i] = s1
        cr2[i] = s2
        fingerprint += x[i] * sy
    }

    // Pass over A: A·(B·r) and |A|·(|B|·|r|), compared row by row with C·r.
    let factor = freivaldsToleranceFactor(n: n, unitRoundoff: T.unitRoundoff)
    var verified = true
    var worstRatio = 0.0
    func compare(_ claimed: Double, _ expected: Double, _ magnitude: Double) {
        let difference = abs(claimed - expected)
        let tolerance = factor * magnitude
        // Written so that NaN fails: NaN <= anything is false.
        if !(difference <= tolerance) { verified = false }
        let ratio = difference == 0 ? 0 : (tolerance > 0 ? difference / tolerance : .infinity)
        if !(ratio <= worstRatio) { worstRatio = ratio.isNaN ? .infinity : ratio }
    }
    for i in 0..<n {
        let row = a + i * n
        var s1 = 0.0, s2 = 0.0, m1 = 0.0, m2 = 0.0
        for k in 0..<n {
            let value = row[k].widened
            let magnitude = abs(value)
            s1 += value * br1[k]
            s2 += value * br2[k]
            m1 += magnitude * bm1[k]
            m2 += magnitude * bm2[k]
        }
        compare(cr1[i], s1, m1)
        compare(cr2[i], s2, m2)
    }
    return ProductCheck(verified: verified, worstRatio: worstRatio, fingerprint: fingerprint)
}

/// `checkProduct` for matrices held in arrays (tests and tools): allocates its own work vectors.
func checkProduct<T: KernelScalar>(n: Int, a: [T], b: [T], c: [T], seed: UInt64) -> ProductCheck {
    precondition(a.count == n * n && b.count == n * n && c.count == n * n, "matrices must be n×n")
    var work = [Double](repeating: 0, count: workVectorCount * n)
    return a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            c.withUnsafeBufferPointer { c in
                work.withUnsafeMutableBufferPointer { work in
                    checkProduct(
                        n: n, a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!, seed: seed,
                        work: work.baseAddress!)
                }
            }
        }
    }
}

extension Precision {
    /// The relative tolerance of `fingerprintMatches`: 1e-3 for float32, 1e-10 for float64.
    ///
    /// The fingerprint is xᵀ·Ĉ·y; its error is xᵀ·(Ĉ − A·B)·y. With entries uniform in [-1, 1) the
    /// fingerprint's typical magnitude is n^1.5/9, and rounding errors of a real gemm (each ≈ n·u/8,
    /// of random sign) put the error near 0.4·√n·u of that: ≈ 6·10⁻⁶ for float32 and ≈ 10⁻¹⁴ for
    /// float64 at n = 65 536. The tolerances leave two (float32) and four (float64) orders of
    /// magnitude of margin while still making a fingerprint that was not computed from the
    /// seed's matrices (guessed, or from other matrices) fail. The worst-case bound (n·u·n³/16) is
    /// far too loose to be useful here; Freivalds' check is the rigorous one.
    public var fingerprintRelativeTolerance: Double {
        switch self {
        case .float32: 1e-3
        case .float64: 1e-10
        }
    }
}

/// The fingerprint xᵀ·(A·B)·y a correct `runMatmul(p)` reports, computed without the product as
/// (xᵀ·A)·(B·y) in O(n²) time and O(n) memory: A and B are regenerated from the seed and streamed
/// row by row, never stored, so this works for any size a worker could run. Accumulates in Double.
///
/// Returns NaN for invalid parameters (which `fingerprintMatches` never accepts).
public func expectedFingerprint(_ p: MatmulParameters) -> Double {
    guard (try? p.validate()) != nil else { return .nan }
    switch p.precision {
    case .float32: return streamedFingerprint(Float.self, n: p.size, seed: p.seed)
    case .float64: return streamedFingerprint(Double.self, n: p.size, seed: p.seed)
    }
}

func streamedFingerprint<T: KernelScalar>(_: T.Type, n: Int, seed: UInt64) -> Double {
    var vectors = [Double](repeating: 0, count: 3 * n)
    return vectors.withUnsafeMutableBufferPointer { buffer in
        let x = buffer.baseAddress!, y = x + n, xA = x + 2 * n
        fillUniformVector(x, count: n, seed: seed, stream: .fingerprintX)
        fillUniformVector(y, count: n, seed: seed, stream: .fingerprintY)
        var generatorA = Xoshiro256StarStar(seed: seed, stream: .matrixA)
        for i in 0..<n {
            let xi = x[i]
            for k in 0..<n {
                xA[k] += xi * T.uniformElement(generatorA.next()).widened
            }
        }
        var generatorB = Xoshiro256StarStar(seed: seed, stream: .matrixB)
        var fingerprint = 0.0
        for k in 0..<n {
            var rowDotY = 0.0
            for j in 0..<n {
                rowDotY += T.uniformElement(generatorB.next()).widened * y[j]
            }
            fingerprint += xA[k] * rowDotY
        }
        return fingerprint
    }
}

/// Whether a reported fingerprint agrees with `expectedFingerprint` for the same parameters:
/// |reported − expected| ≤ `outcome.precision.fingerprintRelativeTolerance` · max(|expected|, n^1.5/9).
/// The floor n^1.5/9 (the fingerprint's typical magnitude) keeps the test meaningful when the
/// expected value happens to be near zero. False if either value is NaN or infinite.
/// This does not look at `outcome.verified`; check that separately.
public func fingerprintMatches(_ outcome: MatmulOutcome, expected: Double) -> Bool {
    guard outcome.size >= 1, outcome.fingerprint.isFinite, expected.isFinite else { return false }
    let n = Double(outcome.size)
    let scale = max(abs(expected), n * n.squareRoot() / 9)
    return abs(outcome.fingerprint - expected) <= outcome.precision.fingerprintRelativeTolerance * scale
}
