import COpenBLAS
import Glibc
import Synchronization

/// What one `runMatmul` measured and checked.
public struct MatmulOutcome: Sendable, Hashable, Codable {
    /// The matrix dimension n.
    public var size: Int
    public var precision: Precision
    public var seed: UInt64
    /// BLAS threads the multiplication actually used (`openblas_get_num_threads` while it ran).
    public var threads: Int
    /// Seconds to generate A and B (and zero C, which also faults its pages in outside the timing).
    public var generationSeconds: Double
    /// Seconds in the gemm call alone.
    public var computeSeconds: Double
    /// Seconds for Freivalds' check and the fingerprint.
    public var verificationSeconds: Double
    /// 2n³ / computeSeconds / 10⁹ (0 if the call was too short to time).
    public var gflops: Double
    /// Whether Freivalds' check accepted the product.
    public var verified: Bool
    /// xᵀ·C·y for the seed's fingerprint vectors; compare with `expectedFingerprint` using
    /// `fingerprintMatches`. NaN or ∞ if the product held such values (then `verified` is false
    /// too); `JSONEncoder` needs a `nonConformingFloatEncodingStrategy` to encode those.
    public var fingerprint: Double
    /// The OpenBLAS kernel that ran (`openblas_get_corename`, e.g. "SkylakeX" or "Prescott").
    public var kernel: String

    public init(
        size: Int, precision: Precision, seed: UInt64, threads: Int, generationSeconds: Double,
        computeSeconds: Double, verificationSeconds: Double, gflops: Double, verified: Bool,
        fingerprint: Double, kernel: String
    ) {
        self.size = size
        self.precision = precision
        self.seed = seed
        self.threads = threads
        self.generationSeconds = generationSeconds
        self.computeSeconds = computeSeconds
        self.verificationSeconds = verificationSeconds
        self.gflops = gflops
        self.verified = verified
        self.fingerprint = fingerprint
        self.kernel = kernel
    }
}

/// Serialises everything that touches OpenBLAS's process-wide thread count, so that a call's
/// `threads` is the count its own gemm ran with. (A gemm uses every BLAS thread anyway, so running
/// two at once would only make both slower.)
let blasLock = Mutex(())

/// Runs a `matmul` task: C = A·B for n×n matrices generated from `p.seed`, multiplied by OpenBLAS,
/// then checked with two rounds of Freivalds' algorithm and fingerprinted, all timed separately.
///
/// Order of work: validate `p`; compare `p.requiredBytes` with `memory.availableBytes()` and refuse
/// (`insufficientMemory`) before allocating anything; allocate; generate; multiply; verify.
/// If `p.threads > 0` the BLAS thread count is set for this call and restored afterwards.
/// A product that fails verification is reported (`verified == false`), not thrown.
public func runMatmul(_ p: MatmulParameters, memory: MemoryBudget = .system) throws(KernelError) -> MatmulOutcome {
    try runMatmul(p, memory: memory, corruption: nil)
}

/// Changes one element of C between the multiplication and the verification (tests only).
struct ProductCorruption: Sendable, Hashable {
    var row: Int
    var column: Int
    /// Added to the element (NaN or ∞ replace it by a non-finite value).
    var delta: Double
}

/// `runMatmul` with a test hook that corrupts the product before it is verified.
func runMatmul(
    _ p: MatmulParameters, memory: MemoryBudget, corruption: ProductCorruption?
) throws(KernelError) -> MatmulOutcome {
    try p.validate()
    let needed = p.requiredBytes
    let available = memory.availableBytes()
    guard needed <= available else {
        throw .insufficientMemory(needed: needed, available: available)
    }
    switch p.precision {
    case .float32: return try runMatmul(Float.self, p, corruption: corruption)
    case .float64: return try runMatmul(Double.self, p, corruption: corruption)
    }
}

private func runMatmul<T: KernelScalar>(
    _: T.Type, _ p: MatmulParameters, corruption: ProductCorruption?
) throws(KernelError) -> MatmulOutcome {
    let n = p.size
    let clock = ContinuousClock()

    let a = try allocateAligned(T.self, count: n * n)
    defer { freeAligned(a) }
    let b = try allocateAligned(T.self, count: n * n)
    defer { freeAligned(b) }
    let c = try allocateAligned(T.self, count: n * n)
    defer { freeAligned(c) }
    let work = try allocateAligned(Double.self, count: workVectorCount * n)
    defer { freeAligned(work) }

    let generationStart = clock.now
    fillMatrix(a, seed: p.seed, stream: .matrixA)
    fillMatrix(b, seed: p.seed, stream: .matrixB)
    c.initialize(repeating: 0)
    work.initialize(repeating: 0)
    let generationSeconds = seconds(clock.now - generationStart)

    let (threads, computeSeconds) = blasLock.withLock { _ in
        let previous = openblas_get_num_threads()
        if p.threads > 0 { openblas_set_num_threads(Int32(p.threads)) }
        defer { if p.threads > 0 { openblas_set_num_threads(previous) } }
        let used = Int(openblas_get_num_threads())
        let start = clock.now
        T.gemm(n: n, a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!)
        return (used, seconds(clock.now - start))
    }

    if let corruption {
        precondition((0..<n).contains(corruption.row) && (0..<n).contains(corruption.column))
        c[corruption.row * n + corruption.column] += T(corruption.delta)
    }

    let verificationStart = clock.now
    let check = checkProduct(
        n: n, a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!, seed: p.seed, work: work.baseAddress!)
    let verificationSeconds = seconds(clock.now - verificationStart)

    let flops = 2 * Double(n) * Double(n) * Double(n)
    return MatmulOutcome(
        size: n, precision: p.precision, seed: p.seed, threads: threads,
        generationSeconds: generationSeconds, computeSeconds: computeSeconds,
        verificationSeconds: verificationSeconds,
        gflops: computeSeconds > 0 ? flops / computeSeconds / 1e9 : 0,
        verified: check.verified, fingerprint: check.fingerprint, kernel: OpenBLAS.coreName)
}

/// A Duration in seconds.
func seconds(_ duration: Duration) -> Double {
    let (whole, attoseconds) = duration.components
    return Double(whole) + Double(attoseconds) * 1e-18
}
