public import Kernels
import Manifest

/// Runs `matmul` tasks with OpenBLAS: seeded matrices, `cblas_sgemm`/`dgemm`, Freivalds' check.
/// A product that fails the check is a failed attempt (the task is retried elsewhere).
public func matmulExecutor(memory: MemoryBudget = .system) -> TaskExecutor {
    { spec in
        guard spec.kind == .matmul else { return .failed("this agent cannot run \(spec.kind) tasks") }
        let parameters = MatmulParameters(
            size: Int(spec.size), precision: spec.precision == .float64 ? .float64 : .float32, seed: spec.seed,
            threads: Int(spec.threads))
        do {
            let outcome = try runMatmul(parameters, memory: memory)
            guard outcome.verified else {
                return .failed("the product failed Freivalds' check on kernel \(outcome.kernel): the BLAS library or the machine computes wrongly")
            }
            var result = TaskResult()
            result.generationMicros = UInt64(max(0, outcome.generationSeconds * 1e6))
            result.computeMicros = UInt64(max(0, outcome.computeSeconds * 1e6))
            result.verificationMicros = UInt64(max(0, outcome.verificationSeconds * 1e6))
            result.gflops = outcome.gflops
            result.verified = true
            result.fingerprint = outcome.fingerprint
            result.kernel = outcome.kernel
            result.threads = UInt16(clamping: outcome.threads)
            return .completed(result)
        } catch {
            return .failed("\(error)")
        }
    }
}

/// What the agent reports about its kernel: OpenBLAS core and default threads.
public func kernelInfo() -> String {
    "openblas \(OpenBLAS.coreName), \(OpenBLAS.threads) thread\(OpenBLAS.threads == 1 ? "" : "s")"
}
