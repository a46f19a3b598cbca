import Glibc
import Testing

@testable import Kernels

/// A one-off throughput measurement, skipped unless FLOTILLA_KERNEL_MEASURE=1. Run, for example:
/// `FLOTILLA_KERNEL_MEASURE=1 OPENBLAS_CORETYPE=SkylakeX swift test --skip-build --filter MeasureTests`
/// (OPENBLAS_CORETYPE must be in the environment when the process starts). Sizes come from
/// FLOTILLA_KERNEL_MEASURE_SIZE (default 2048). Never asserts timings.
@Suite("Measurement", .enabled(if: getenv("FLOTILLA_KERNEL_MEASURE").map { String(cString: $0) } == "1"))
struct MeasureTests {
    @Test func measure() throws {
        let size = getenv("FLOTILLA_KERNEL_MEASURE_SIZE").flatMap { Int(String(cString: $0)) } ?? 2048
        let core = OpenBLAS.coreName
        let flags = CPUInfo.flags
        print("kernel=\(core) coretype-env=\(OpenBLAS.coreTypeOverride ?? "unset") config=\(OpenBLAS.configuration)")
        print(
            "cpu=\(CPUInfo.modelName ?? "?") cores=\(CPUInfo.logicalCores) GHz=\(CPUInfo.gigahertz ?? 0) "
                + "recommended=\(CPUInfo.recommendedCoreType(flags: flags) ?? "-") "
                + "fallbackLikely=\(CPUInfo.openBLASFallbackLikely(coreName: core, flags: flags))")
        if let advice = OpenBLAS.coreTypeAdvice { print("advice: \(advice)") }
        for threads in [1, 0] {
            for _ in 0..<3 {
                let parameters = MatmulParameters(size: size, precision: .float32, seed: 2024, threads: threads)
                let outcome = try runMatmul(parameters)
                let peak = CPUInfo.theoreticalPeakGFLOPS(cores: outcome.threads, precision: .float32) ?? 0
                print(
                    "n=\(size) float32 threads=\(outcome.threads) kernel=\(outcome.kernel) gflops=\(outcome.gflops) "
                        + "peak=\(peak) gen=\(outcome.generationSeconds)s compute=\(outcome.computeSeconds)s "
                        + "verify=\(outcome.verificationSeconds)s verified=\(outcome.verified) "
                        + "fingerprintOK=\(fingerprintMatches(outcome, expected: expectedFingerprint(parameters)))")
                #expect(outcome.verified)
            }
        }
    }
}
