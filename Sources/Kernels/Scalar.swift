import COpenBLAS

/// An element type the kernel multiplies: `Float` (sgemm) or `Double` (dgemm).
protocol KernelScalar: BinaryFloatingPoint {
    /// The unit roundoff u of this type.
    static var unitRoundoff: Double { get }
    /// The matrix element that one 64-bit draw maps to: uniform in [-1, 1). Matrix generation and
    /// `expectedFingerprint` both use exactly this map, one draw per element in row-major order.
    static func uniformElement(_ bits: UInt64) -> Self
    /// The value widened to Double (exact for both types).
    var widened: Double { get }
    /// Fills `count` elements with `uniformElement` of successive draws. Written per type (not
    /// generically) so that it is fast even in unoptimised builds.
    static func fill(_ pointer: UnsafeMutablePointer<Self>, count: Int, generator: inout Xoshiro256StarStar)
    /// C = A·B for row-major n×n matrices (beta = 0, so C's previous contents are ignored).
    static func gemm(n: Int, a: UnsafePointer<Self>, b: UnsafePointer<Self>, c: UnsafeMutablePointer<Self>)
}

extension Float: KernelScalar {
    static var unitRoundoff: Double { Double(Float.ulpOfOne) / 2 }

    @inline(__always)
    static func uniformElement(_ bits: UInt64) -> Float { .uniformMinusOneToOne(bits) }

    @inline(__always)
    var widened: Double { Double(self) }

    static func fill(_ pointer: UnsafeMutablePointer<Float>, count: Int, generator: inout Xoshiro256StarStar) {
        for index in 0..<count {
            pointer[index] = .uniformMinusOneToOne(generator.next())
        }
    }

    static func gemm(n: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
        let dimension = blasint(n)
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, dimension, dimension, dimension,
            1, a, dimension, b, dimension, 0, c, dimension)
    }
}

extension Double: KernelScalar {
    static var unitRoundoff: Double { Double.ulpOfOne / 2 }

    @inline(__always)
    static func uniformElement(_ bits: UInt64) -> Double { .uniformMinusOneToOne(bits) }

    @inline(__always)
    var widened: Double { self }

    static func fill(_ pointer: UnsafeMutablePointer<Double>, count: Int, generator: inout Xoshiro256StarStar) {
        for index in 0..<count {
            pointer[index] = .uniformMinusOneToOne(generator.next())
        }
    }

    static func gemm(n: Int, a: UnsafePointer<Double>, b: UnsafePointer<Double>, c: UnsafeMutablePointer<Double>) {
        let dimension = blasint(n)
        cblas_dgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, dimension, dimension, dimension,
            1, a, dimension, b, dimension, 0, c, dimension)
    }
}

/// Fills an n×n row-major matrix from one stream of `seed`.
func fillMatrix<T: KernelScalar>(_ matrix: UnsafeMutableBufferPointer<T>, seed: UInt64, stream: RandomStream) {
    guard let base = matrix.baseAddress else { return }
    var generator = Xoshiro256StarStar(seed: seed, stream: stream)
    T.fill(base, count: matrix.count, generator: &generator)
}
