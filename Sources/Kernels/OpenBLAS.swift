import COpenBLAS
import Glibc

/// The OpenBLAS library this process loaded: which kernel it picked and how many threads it uses.
///
/// OpenBLAS chooses its kernel once, when the library loads, from the CPU (or from the
/// `OPENBLAS_CORETYPE` environment variable). Debian's 0.3.21 does not recognise some newer Xeons
/// and falls back to the generic Prescott kernel, several times slower; see
/// `CPUInfo.openBLASFallbackLikely(coreName:flags:)` and `coreTypeAdvice`. The kernel cannot be
/// changed from inside a running process: set the variable before starting it.
public enum OpenBLAS {
    /// The kernel in use, e.g. "SkylakeX", "Haswell" or "Prescott" (`openblas_get_corename`).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// The build configuration, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY SkylakeX MAX_THREADS=64".
    public static var configuration: String {
        guard let text = openblas_get_config() else { return "unknown" }
        return String(cString: text)
    }

    /// BLAS threads a gemm would use now.
    public static var threads: Int {
        Int(openblas_get_num_threads())
    }

    /// `OPENBLAS_CORETYPE` as this process saw it, or nil if unset.
    public static var coreTypeOverride: String? {
        getenv("OPENBLAS_CORETYPE").map { String(cString: $0) }
    }

    /// Sets the process-wide BLAS thread count (OpenBLAS may cap it at its build's maximum; read
    /// `threads` to see the result). Throws `invalidParameters` outside 1...1024.
    public static func setThreads(_ count: Int) throws(KernelError) {
        guard (1...MatmulParameters.maximumThreads).contains(count) else {
            throw .invalidParameters(
                "BLAS threads must be in 1...\(MatmulParameters.maximumThreads) (got \(count)); "
                    + "use the number of cores the kernel may occupy")
        }
        blasLock.withLock { _ in openblas_set_num_threads(Int32(count)) }
    }

    /// A sentence to log when OpenBLAS runs a generic kernel on a CPU that has a much faster one,
    /// naming the environment variable to set; nil when the kernel looks right.
    public static var coreTypeAdvice: String? {
        let flags = CPUInfo.flags
        let core = coreName
        guard CPUInfo.openBLASFallbackLikely(coreName: core, flags: flags),
            let recommended = CPUInfo.recommendedCoreType(flags: flags)
        else { return nil }
        return "OpenBLAS is using its generic \(core) kernel on a CPU with "
            + (recommended == "SkylakeX" ? "AVX-512" : "AVX2/FMA")
            + "; matmul will be several times slower than it could be. Start the agent with "
            + "OPENBLAS_CORETYPE=\(recommended) in its environment (it is read when the library loads"
            + (coreTypeOverride.map { "; currently set to \"\($0)\", which OpenBLAS did not use" } ?? "")
            + ")."
    }

    /// The `OPENBLAS_CORETYPE` to use when OpenBLAS fell back to a generic kernel on a CPU that
    /// has a better one; nil when the kernel looks right.
    public static var recommendedCoreTypeIfFallingBack: String? {
        let flags = CPUInfo.flags
        guard CPUInfo.openBLASFallbackLikely(coreName: coreName, flags: flags) else { return nil }
        return CPUInfo.recommendedCoreType(flags: flags)
    }

    /// If OpenBLAS fell back to a generic kernel and `OPENBLAS_CORETYPE` is unset, replaces this
    /// process with the same command and the variable set (the kernel is chosen when the library
    /// loads, so only a new process can use a better one). Returns only if nothing was done or
    /// the exec failed (`log` says which); once the variable is set it never execs again.
    public static func reexecWithRecommendedCoreTypeIfNeeded(log: (String) -> Void) {
        guard coreTypeOverride == nil, let coreType = recommendedCoreTypeIfFallingBack else { return }
        log("OpenBLAS chose its generic \(coreName) kernel; restarting with OPENBLAS_CORETYPE=\(coreType)")
        setenv("OPENBLAS_CORETYPE", coreType, 1)
        var arguments = CommandLine.arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &arguments)
        log("warning: could not restart (\(String(cString: strerror(errno)))); continuing with \(coreName)")
    }
}
