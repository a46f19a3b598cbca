/// SplitMix64 (Steele, Lea & Flood 2014): used only to expand a seed into xoshiro state.
struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return mix64(state)
    }
}

/// The SplitMix64 output function: a bijective 64-bit finaliser.
@inline(__always)
func mix64(_ value: UInt64) -> UInt64 {
    var z = value
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// The independent random streams of one seed. Changing a raw value changes every generated
/// matrix and fingerprint, so these are part of the task's wire contract.
enum RandomStream: UInt64, CaseIterable {
    case matrixA = 1
    case matrixB = 2
    case freivalds1 = 3
    case freivalds2 = 4
    case fingerprintX = 5
    case fingerprintY = 6
}

/// xoshiro256** (Blackman & Vigna 2018): small, fast, and good in all 64 bits.
struct Xoshiro256StarStar {
    var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// The generator for one stream of a seed. Every state word mixes both the seed and the stream,
    /// so streams of one seed (and one stream of different seeds) start at unrelated states.
    init(seed: UInt64, stream: RandomStream) {
        var fromSeed = SplitMix64(state: seed)
        var fromStream = SplitMix64(state: mix64(stream.rawValue &* 0xD1B5_4A32_D192_ED03) ^ 0x6A09_E667_F3BC_C909)
        func word() -> UInt64 {
            let a = fromSeed.next()
            let b = fromStream.next()
            return mix64(a ^ ((b << 23) | (b >> 41)))
        }
        s0 = word()
        s1 = word()
        s2 = word()
        s3 = word()
        if s0 | s1 | s2 | s3 == 0 { s0 = 0x9E37_79B9_7F4A_7C15 }  // The one forbidden state.
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }
}

extension Double {
    /// Uniform in [-1, 1) on the grid of 2⁻⁵²: the top 53 bits of `bits`. Exact.
    @inline(__always)
    static func uniformMinusOneToOne(_ bits: UInt64) -> Double {
        Double(bits >> 11) * 0x1p-52 - 1
    }
}

extension Float {
    /// Uniform in [-1, 1) on the grid of 2⁻²³: the top 24 bits of `bits`. Exact.
    @inline(__always)
    static func uniformMinusOneToOne(_ bits: UInt64) -> Float {
        Float(UInt32(truncatingIfNeeded: bits >> 40)) * 0x1p-23 - 1
    }
}

/// Fills `count` Doubles at `pointer` with uniform values in [-1, 1) from one stream of `seed`.
func fillUniformVector(_ pointer: UnsafeMutablePointer<Double>, count: Int, seed: UInt64, stream: RandomStream) {
    var generator = Xoshiro256StarStar(seed: seed, stream: stream)
    for index in 0..<count {
        pointer[index] = .uniformMinusOneToOne(generator.next())
    }
}
