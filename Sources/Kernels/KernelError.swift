/// Why a kernel refused to run or could not finish. Every description says what to change.
public enum KernelError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A parameter is outside its allowed range; the message names it, its range and the value given.
    case invalidParameters(String)
    /// The kernel needs `needed` bytes but only `available` are free (the smaller of the kernel's
    /// `MemAvailable` and the cgroup's remaining limit). Checked before anything is allocated.
    case insufficientMemory(needed: UInt64, available: UInt64)
    /// The allocator refused a request of `bytes` even though the memory check passed (for example
    /// because another process took the memory in between).
    case allocationFailed(bytes: UInt64)

    public var description: String {
        switch self {
        case .invalidParameters(let message):
            return "invalid matmul parameters: \(message)"
        case .insufficientMemory(let needed, let available):
            return "matmul needs \(formatBytes(needed)) (three n×n matrices plus work vectors) but only "
                + "\(formatBytes(available)) is available (MemAvailable, or the cgroup memory limit if lower); "
                + "use a smaller size (memory grows with size², and float32 needs half of float64) "
                + "or run the task on a machine with more free memory"
        case .allocationFailed(let bytes):
            return "could not allocate \(formatBytes(bytes)) although the memory check passed "
                + "(another process probably took the memory in the meantime); retry later, free memory "
                + "on this machine, or use a smaller size"
        }
    }
}

/// "1.50 GiB (1610612736 bytes)": a human-readable size with the exact byte count.
func formatBytes(_ bytes: UInt64) -> String {
    let gib = Double(bytes) / 1_073_741_824
    let hundredths = (gib * 100).rounded()
    let whole = Int(hundredths / 100)
    let fraction = Int(hundredths) % 100
    let padded = fraction < 10 ? "0\(fraction)" : "\(fraction)"
    return "\(whole).\(padded) GiB (\(bytes) bytes)"
}
