import Foundation
import Testing

@testable import Kernels

@Suite("Matmul kernel")
struct MatmulTests {
    static let sizes = [1, 7, 64, 257]

    @Test("small products verify and match the client-side fingerprint", arguments: sizes, Precision.allCases)
    func smallProductsVerify(size: Int, precision: Precision) throws {
        let parameters = MatmulParameters(size: size, precision: precision, seed: 0xF10_7111A, threads: 1)
        let outcome = try runMatmul(parameters)
        #expect(outcome.verified)
        #expect(outcome.size == size)
        #expect(outcome.precision == precision)
        #expect(outcome.seed == parameters.seed)
        #expect(outcome.threads == 1)
        #expect(!outcome.kernel.isEmpty)
        #expect(outcome.gflops >= 0 && outcome.gflops.isFinite)
        let expected = expectedFingerprint(parameters)
        #expect(fingerprintMatches(outcome, expected: expected), "fingerprint \(outcome.fingerprint) vs \(expected)")
    }

    @Test("the fingerprint of other matrices, or a nudged one, does not match")
    func fingerprintMismatch() throws {
        let parameters = MatmulParameters(size: 64, precision: .float32, seed: 7)
        let outcome = try runMatmul(parameters)
        var other = parameters
        other.seed = 8
        #expect(!fingerprintMatches(outcome, expected: expectedFingerprint(other)))
        let expected = expectedFingerprint(parameters)
        let scale = max(abs(expected), 64 * 8 / 9.0)
        #expect(!fingerprintMatches(outcome, expected: expected + 0.01 * scale))
        #expect(!fingerprintMatches(outcome, expected: .nan))
        #expect(expectedFingerprint(MatmulParameters(size: 0, precision: .float32, seed: 1)).isNaN)
    }

    @Test("an outcome round-trips through JSON")
    func outcomeIsCodable() throws {
        let outcome = try runMatmul(MatmulParameters(size: 7, precision: .float64, seed: 3))
        #expect(outcome.computeSeconds >= 0 && outcome.generationSeconds >= 0 && outcome.verificationSeconds >= 0)
        let decoded = try JSONDecoder().decode(MatmulOutcome.self, from: JSONEncoder().encode(outcome))
        #expect(decoded == outcome)
        let parameters = MatmulParameters(size: 4096, precision: .float32, seed: .max, threads: 2)
        #expect(try JSONDecoder().decode(MatmulParameters.self, from: JSONEncoder().encode(parameters)) == parameters)
    }
}

@Suite("Freivalds verification")
struct VerificationTests {
    /// A and B as `runMatmul` generates them, and their product by plain Double loops.
    static func matrices<T: KernelScalar>(_: T.Type, n: Int, seed: UInt64) -> (a: [T], b: [T], c: [T]) {
        var a = [T](repeating: 0, count: n * n)
        var b = [T](repeating: 0, count: n * n)
        a.withUnsafeMutableBufferPointer { fillMatrix($0, seed: seed, stream: .matrixA) }
        b.withUnsafeMutableBufferPointer { fillMatrix($0, seed: seed, stream: .matrixB) }
        var c = [T](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0..<n {
                var sum = 0.0
                for k in 0..<n { sum += a[i * n + k].widened * b[k * n + j].widened }
                c[i * n + j] = T(sum)
            }
        }
        return (a, b, c)
    }

    @Test("a correct product passes, one changed element fails", arguments: Precision.allCases)
    func corruptedElementFails(precision: Precision) {
        let n = 64
        let seed: UInt64 = 42
        let check: (Bool, Bool)
        switch precision {
        case .float32:
            var (a, b, c) = Self.matrices(Float.self, n: n, seed: seed)
            let good = checkProduct(n: n, a: a, b: b, c: c, seed: seed)
            c[17 * n + 40] += 1  // Entries of C are about √64/3 ≈ 2.7 in size.
            check = (good.verified, checkProduct(n: n, a: a, b: b, c: c, seed: seed).verified)
            _ = (a, b)
        case .float64:
            var (a, b, c) = Self.matrices(Double.self, n: n, seed: seed)
            let good = checkProduct(n: n, a: a, b: b, c: c, seed: seed)
            c[17 * n + 40] += 1e-6
            check = (good.verified, checkProduct(n: n, a: a, b: b, c: c, seed: seed).verified)
            _ = (a, b)
        }
        #expect(check.0, "the correct product must verify")
        #expect(!check.1, "the corrupted product must not verify")
    }

    @Test("runMatmul reports a product corrupted after the gemm as unverified", arguments: Precision.allCases)
    func runMatmulCatchesCorruption(precision: Precision) throws {
        let parameters = MatmulParameters(size: 64, precision: precision, seed: 99)
        for delta in [1.0, -3.5, .nan, .infinity] {
            let outcome = try runMatmul(
                parameters, memory: .system, corruption: ProductCorruption(row: 5, column: 63, delta: delta))
            #expect(!outcome.verified, "delta \(delta)")
        }
        #expect(try runMatmul(parameters, memory: .system, corruption: nil).verified)
    }

    @Test("OpenBLAS's own product is far inside the tolerance", arguments: Precision.allCases)
    func blasProductMargin(precision: Precision) {
        let n = 257
        func product<T: KernelScalar>(_: T.Type) -> ProductCheck {
            var (a, b, _) = Self.matrices(T.self, n: n, seed: 11)
            var c = [T](repeating: 0, count: n * n)
            a.withUnsafeMutableBufferPointer { a in
                b.withUnsafeMutableBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        T.gemm(n: n, a: a.baseAddress!, b: b.baseAddress!, c: c.baseAddress!)
                    }
                }
            }
            return checkProduct(n: n, a: a, b: b, c: c, seed: 11)
        }
        let check = precision == .float32 ? product(Float.self) : product(Double.self)
        #expect(check.verified)
        #expect(check.worstRatio < 0.1, "worst |Cr − ABr| / tolerance = \(check.worstRatio)")
    }

    @Test("the tolerance is tight enough: a correct product's worst ratio is well below 1")
    func worstRatioOfCorrectProduct() {
        let (a, b, c) = Self.matrices(Float.self, n: 64, seed: 5)
        let check = checkProduct(n: 64, a: a, b: b, c: c, seed: 5)
        #expect(check.verified)
        #expect(check.worstRatio < 0.1)
    }
}

@Suite("Seeded generation")
struct GenerationTests {
    static func matrix(_ seed: UInt64, _ stream: RandomStream, count: Int = 4096) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { fillMatrix($0, seed: seed, stream: stream) }
        return values
    }

    @Test("the same seed gives the same matrices, a different seed different ones")
    func deterministic() {
        #expect(Self.matrix(1, .matrixA) == Self.matrix(1, .matrixA))
        #expect(Self.matrix(1, .matrixB) == Self.matrix(1, .matrixB))
        #expect(Self.matrix(1, .matrixA) != Self.matrix(2, .matrixA))
        #expect(Self.matrix(1, .matrixA) != Self.matrix(1, .matrixB))
    }

    @Test("every stream of a seed differs from every other")
    func streamsDiffer() {
        var firstDraws = Set<UInt64>()
        for stream in RandomStream.allCases {
            var generator = Xoshiro256StarStar(seed: 0, stream: stream)
            firstDraws.insert(generator.next())
        }
        #expect(firstDraws.count == RandomStream.allCases.count)
    }

    @Test("values are uniform in [-1, 1)", arguments: [UInt64(0), 1, .max])
    func range(seed: UInt64) {
        let values = Self.matrix(seed, .matrixA, count: 100_000)
        #expect(values.allSatisfy { $0 >= -1 && $0 < 1 })
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
        #expect(abs(mean) < 0.01)
        let negative = values.filter { $0 < 0 }.count
        #expect(abs(negative - 50_000) < 1_000)
        #expect(Float.uniformMinusOneToOne(0) == -1)
        #expect(Float.uniformMinusOneToOne(.max) < 1)
        #expect(Double.uniformMinusOneToOne(.max) < 1)
    }
}

@Suite("Parameters and memory")
struct ParameterTests {
    @Test("absurd sizes are refused, before the memory check", arguments: [0, -1, 100_000, 65_537])
    func absurdSizes(size: Int) {
        let parameters = MatmulParameters(size: size, precision: .float32, seed: 1)
        #expect {
            try runMatmul(parameters, memory: .fixed(0))
        } throws: { error in
            guard case .invalidParameters(let message) = error as? KernelError else { return false }
            return message.contains("size") && message.contains("\(size)")
        }
    }

    @Test("thread counts outside 0...1024 are refused")
    func threads() {
        for threads in [-1, 1025] {
            let parameters = MatmulParameters(size: 8, precision: .float64, seed: 1, threads: threads)
            #expect(throws: KernelError.self) { try parameters.validate() }
        }
        #expect(throws: Never.self) { try MatmulParameters(size: 8, precision: .float64, seed: 1, threads: 1024).validate() }
        #expect(throws: KernelError.self) { try OpenBLAS.setThreads(0) }
    }

    @Test("a size that does not fit the budget is refused before allocation")
    func insufficientMemory() throws {
        let parameters = MatmulParameters(size: 1024, precision: .float64, seed: 1)
        #expect(parameters.requiredBytes == 3 * 1024 * 1024 * 8 + UInt64(workVectorCount) * 8 * 1024)
        #expect(throws: KernelError.insufficientMemory(needed: parameters.requiredBytes, available: 1 << 20)) {
            try runMatmul(parameters, memory: .fixed(1 << 20))
        }
        // One byte short is refused; exactly enough runs.
        let small = MatmulParameters(size: 16, precision: .float32, seed: 1)
        #expect(throws: KernelError.self) { try runMatmul(small, memory: .fixed(small.requiredBytes - 1)) }
        #expect(try runMatmul(small, memory: .fixed(small.requiredBytes)).verified)
    }

    @Test("the largest valid size is refused by this machine's memory, not attempted")
    func largestSizeOnThisMachine() {
        let parameters = MatmulParameters(size: 65_536, precision: .float64, seed: 1)
        #expect(parameters.requiredBytes > 100_000_000_000)
        #expect {
            try runMatmul(parameters)
        } throws: { error in
            guard case .insufficientMemory(let needed, _) = error as? KernelError else { return false }
            return needed == parameters.requiredBytes
        }
    }

    @Test("error descriptions say what to do")
    func descriptions() {
        let memory = KernelError.insufficientMemory(needed: 3 << 30, available: 1 << 29)
        #expect(memory.description.contains("3.00 GiB"))
        #expect(memory.description.contains("0.50 GiB"))
        #expect(memory.description.contains("smaller size"))
        #expect(KernelError.allocationFailed(bytes: 1 << 30).description.contains("1.00 GiB"))
    }

    @Test("MemAvailable and cgroup limits parse")
    func memoryParsing() {
        let meminfo = "MemTotal:       32000000 kB\nMemFree:  100 kB\nMemAvailable:   24252712 kB\n"
        #expect(SystemMemory.parseMemAvailable(meminfo) == 24_252_712 * 1024)
        #expect(SystemMemory.parseMemAvailable("MemTotal: 1 kB\n") == nil)
        #expect(SystemMemory.headroom(limitText: "max\n", usageText: "100") == nil)
        #expect(SystemMemory.headroom(limitText: "1000\n", usageText: "300\n") == 700)
        #expect(SystemMemory.headroom(limitText: "1000", usageText: "1200") == 0)
        #expect(SystemMemory.headroom(limitText: "1000", usageText: "900", reclaimable: 400) == 500)
        #expect(SystemMemory.headroom(limitText: "9223372036854771712", usageText: "1") == nil)
        #expect(SystemMemory.parseInactiveFile("anon 5\ninactive_file 123\nactive_file 9\n") == 123)
        #expect(MemoryBudget.system.availableBytes() > 0)
    }
}

@Suite("CPU and OpenBLAS")
struct CPUTests {
    static let avx512: Set<String> = ["sse", "sse2", "avx", "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl"]
    static let avx2: Set<String> = ["sse", "sse2", "avx", "avx2", "fma"]
    static let sse: Set<String> = ["sse", "sse2", "sse4_2"]

    @Test("recommended core types")
    func recommended() {
        #expect(CPUInfo.recommendedCoreType(flags: Self.avx512) == "SkylakeX")
        #expect(CPUInfo.recommendedCoreType(flags: Self.avx512.subtracting(["avx512vl"])) == "Haswell")
        #expect(CPUInfo.recommendedCoreType(flags: Self.avx2) == "Haswell")
        #expect(CPUInfo.recommendedCoreType(flags: Self.avx2.subtracting(["fma"])) == nil)
        #expect(CPUInfo.recommendedCoreType(flags: Self.sse) == nil)
        #expect(CPUInfo.recommendedCoreType(flags: []) == nil)
    }

    @Test("fallback detection")
    func fallback() {
        #expect(CPUInfo.openBLASFallbackLikely(coreName: "Prescott", flags: Self.avx512))
        #expect(CPUInfo.openBLASFallbackLikely(coreName: "Core2", flags: Self.avx2))
        #expect(CPUInfo.openBLASFallbackLikely(coreName: "generic", flags: Self.avx2))
        #expect(!CPUInfo.openBLASFallbackLikely(coreName: "SkylakeX", flags: Self.avx512))
        #expect(!CPUInfo.openBLASFallbackLikely(coreName: "Haswell", flags: Self.avx2))
        #expect(!CPUInfo.openBLASFallbackLikely(coreName: "Prescott", flags: Self.sse))
    }

    @Test("theoretical peak")
    func peak() {
        #expect(CPUInfo.theoreticalPeakGFLOPS(cores: 2, precision: .float32, flags: Self.avx512, gigahertz: 2.5) == 320)
        #expect(CPUInfo.theoreticalPeakGFLOPS(cores: 2, precision: .float64, flags: Self.avx512, gigahertz: 2.5) == 160)
        #expect(CPUInfo.theoreticalPeakGFLOPS(cores: 1, precision: .float32, flags: Self.avx2, gigahertz: 3) == 96)
        #expect(CPUInfo.theoreticalPeakGFLOPS(cores: 1, precision: .float32, flags: Self.sse, gigahertz: 3) == 24)
        #expect(CPUInfo.theoreticalPeakGFLOPS(cores: 1, precision: .float32, flags: [], gigahertz: 3) == nil)
    }

    @Test("/proc/cpuinfo parses; this machine reports something sensible")
    func thisMachine() {
        let text = """
            processor\t: 0
            model name\t: Intel(R) Xeon(R) Processor
            cpu MHz\t\t: 2299.998
            flags\t\t: fpu sse sse2 avx2 fma avx512f
            processor\t: 1
            model name\t: Other
            """
        let summary = CPUInfo.parse(text)
        #expect(summary.modelName == "Intel(R) Xeon(R) Processor")
        #expect(summary.megahertz == 2299.998)
        #expect(summary.flags == ["fpu", "sse", "sse2", "avx2", "fma", "avx512f"])
        #expect(CPUInfo.logicalCores >= 1)
        #expect(!OpenBLAS.coreName.isEmpty)
        #expect(OpenBLAS.configuration.contains("OpenBLAS"))
        #expect(OpenBLAS.threads >= 1)
    }
}
