/// The floating-point type of a matmul: which BLAS routine multiplies the matrices.
public enum Precision: String, Sendable, Codable, CaseIterable {
    /// IEEE single precision, multiplied with `cblas_sgemm` (4 bytes per element).
    case float32
    /// IEEE double precision, multiplied with `cblas_dgemm` (8 bytes per element).
    case float64

    /// Bytes per matrix element.
    public var elementSize: Int {
        switch self {
        case .float32: 4
        case .float64: 8
        }
    }

    /// The unit roundoff u (half the machine epsilon): 2⁻²⁴ for float32, 2⁻⁵³ for float64.
    public var unitRoundoff: Double {
        switch self {
        case .float32: Double(Float.ulpOfOne) / 2
        case .float64: Double.ulpOfOne / 2
        }
    }
}

/// What a `matmul` task asks for: C = A·B with A and B n×n, generated from `seed`.
public struct MatmulParameters: Sendable, Hashable, Codable {
    /// The largest accepted matrix dimension. 65 536² elements still index with 32-bit BLAS
    /// integers (each dimension fits), and is far beyond any machine's memory anyway.
    public static let maximumSize = 65_536
    /// The largest accepted BLAS thread count.
    public static let maximumThreads = 1024

    /// The dimension n of the square matrices A, B and C.
    public var size: Int
    /// Element type, and so which BLAS routine runs.
    public var precision: Precision
    /// Seeds A, B and the verification and fingerprint vectors (each from its own stream).
    public var seed: UInt64
    /// BLAS threads for the multiplication; 0 leaves OpenBLAS's default (usually one per core, or
    /// `OPENBLAS_NUM_THREADS`).
    public var threads: Int

    public init(size: Int, precision: Precision, seed: UInt64, threads: Int = 0) {
        self.size = size
        self.precision = precision
        self.seed = seed
        self.threads = threads
    }

    /// Throws `KernelError.invalidParameters` when `size` is outside 1...65 536 or `threads` outside
    /// 0...1024. Decoding does not validate; `runMatmul` calls this first.
    public func validate() throws(KernelError) {
        guard (1...Self.maximumSize).contains(size) else {
            throw .invalidParameters(
                "size must be in 1...\(Self.maximumSize) (got \(size)); give the matrix dimension n, "
                    + "for example 1024 or 4096")
        }
        guard (0...Self.maximumThreads).contains(threads) else {
            throw .invalidParameters(
                "threads must be in 0...\(Self.maximumThreads) (got \(threads)); use 0 for OpenBLAS's "
                    + "default or the number of cores to use")
        }
    }

    /// Bytes `runMatmul` needs: the three n×n matrices plus `workVectorCount` Double vectors of
    /// length n used by verification. Meaningful only for valid parameters (saturates otherwise).
    public var requiredBytes: UInt64 {
        let n = UInt64(clamping: max(size, 0))
        let (square, o1) = n.multipliedReportingOverflow(by: n)
        let (matrices, o2) = square.multipliedReportingOverflow(by: 3 * UInt64(precision.elementSize))
        let vectors = UInt64(workVectorCount) * 8 * n
        let (total, o3) = matrices.addingReportingOverflow(vectors)
        return o1 || o2 || o3 ? .max : total
    }
}

/// Double vectors of length n that verification allocates next to the matrices.
let workVectorCount = 10
