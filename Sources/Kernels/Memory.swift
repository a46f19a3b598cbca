import Glibc

/// Where `runMatmul` learns how many bytes it may allocate. Injectable so that tests (and callers
/// that reserve memory for other work) can impose their own limit.
public struct MemoryBudget: Sendable {
    /// Bytes the kernel may use right now.
    public var availableBytes: @Sendable () -> UInt64

    public init(availableBytes: @escaping @Sendable () -> UInt64) {
        self.availableBytes = availableBytes
    }

    /// This machine: the smaller of `MemAvailable` in /proc/meminfo and the headroom left under
    /// every cgroup memory limit on this process's path (v2 `memory.max` minus `memory.current`,
    /// not counting reclaimable `inactive_file` page cache; or the v1 equivalents). Without
    /// /proc/meminfo it uses physical memory; if nothing is readable it does not limit.
    public static let system = MemoryBudget { SystemMemory.availableBytes() }

    /// A fixed number of bytes, whatever the machine has.
    public static func fixed(_ bytes: UInt64) -> MemoryBudget {
        MemoryBudget { bytes }
    }
}

/// Reads the kernel's and the cgroups' view of free memory.
enum SystemMemory {
    static func availableBytes() -> UInt64 {
        var available: UInt64? = readTextFile("/proc/meminfo").flatMap(parseMemAvailable)
        if available == nil {
            let pages = sysconf(Int32(_SC_PHYS_PAGES))
            let pageSize = sysconf(Int32(_SC_PAGESIZE))
            if pages > 0, pageSize > 0 {
                available = UInt64(pages).multipliedReportingOverflow(by: UInt64(pageSize)).partialValue
            }
        }
        if let headroom = cgroupHeadroom() {
            available = min(available ?? headroom, headroom)
        }
        return available ?? .max
    }

    /// `MemAvailable` (given in kB) in bytes.
    static func parseMemAvailable(_ meminfo: String) -> UInt64? {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kilobytes = UInt64(fields[1]) else { return nil }
            let unit: UInt64 = fields.count >= 3 && fields[2].lowercased() == "kb" ? 1024 : 1
            return kilobytes.multipliedReportingOverflow(by: unit).partialValue
        }
        return nil
    }

    /// Bytes left under a limit: `limit − (usage − reclaimable)`, or nil when `limitText` is "max"
    /// (no limit) or unparsable.
    static func headroom(limitText: String, usageText: String, reclaimable: UInt64 = 0) -> UInt64? {
        let trimmedLimit = limitText.trimmingWhitespace
        guard trimmedLimit != "max", let limit = UInt64(trimmedLimit) else { return nil }
        // cgroup v1 reports "no limit" as a huge page-aligned number near Int64.max.
        guard limit < (1 << 62) else { return nil }
        let usage = UInt64(usageText.trimmingWhitespace) ?? 0
        let used = usage > reclaimable ? usage - reclaimable : 0
        return limit > used ? limit - used : 0
    }

    /// `inactive_file` (v2) or `total_inactive_file` (v1) from a memory.stat file.
    static func parseInactiveFile(_ stat: String) -> UInt64 {
        for line in stat.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == "inactive_file" || fields[0] == "total_inactive_file" {
                return UInt64(fields[1]) ?? 0
            }
        }
        return 0
    }

    /// The smallest headroom over this process's cgroup and its ancestors, or nil without limits.
    static func cgroupHeadroom() -> UInt64? {
        let root = "/sys/fs/cgroup"
        var smallest: UInt64?
        func consider(_ value: UInt64?) {
            if let value { smallest = min(smallest ?? value, value) }
        }
        // cgroup v2: "0::/some/path" in /proc/self/cgroup; limits apply at every level above it.
        var relative = ""
        if let membership = readTextFile("/proc/self/cgroup") {
            for line in membership.split(separator: "\n") where line.hasPrefix("0::") {
                relative = String(line.dropFirst(3))
            }
        }
        var components = relative.split(separator: "/").map(String.init)
        while true {
            let directory = components.isEmpty ? root : root + "/" + components.joined(separator: "/")
            if let limit = readTextFile(directory + "/memory.max"),
                let usage = readTextFile(directory + "/memory.current")
            {
                let reclaimable = readTextFile(directory + "/memory.stat").map(parseInactiveFile) ?? 0
                consider(headroom(limitText: limit, usageText: usage, reclaimable: reclaimable))
            }
            if components.isEmpty { break }
            components.removeLast()
        }
        // cgroup v1.
        if let limit = readTextFile(root + "/memory/memory.limit_in_bytes"),
            let usage = readTextFile(root + "/memory/memory.usage_in_bytes")
        {
            let reclaimable = readTextFile(root + "/memory/memory.stat").map(parseInactiveFile) ?? 0
            consider(headroom(limitText: limit, usageText: usage, reclaimable: reclaimable))
        }
        return smallest
    }
}

/// The whole contents of a (small, typically /proc or /sys) text file, or nil if unreadable.
/// Reads until end of file because /proc files report a size of 0.
func readTextFile(_ path: String) -> String? {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16_384)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if count == 0 { break }
        bytes.append(contentsOf: chunk[0..<count])
    }
    return String(decoding: bytes, as: UTF8.self)
}

extension StringProtocol {
    var trimmingWhitespace: String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}

/// A 64-byte-aligned buffer of `count` elements, or `allocationFailed`. Free with `freeAligned`.
/// `posix_memalign` (rather than `allocate(capacity:)`, which traps) so that failure is an error.
func allocateAligned<T>(_: T.Type, count: Int) throws(KernelError) -> UnsafeMutableBufferPointer<T> {
    let bytes = count * MemoryLayout<T>.stride
    var raw: UnsafeMutableRawPointer?
    guard posix_memalign(&raw, 64, max(bytes, 1)) == 0, let raw else {
        throw .allocationFailed(bytes: UInt64(bytes))
    }
    return UnsafeMutableBufferPointer(start: raw.bindMemory(to: T.self, capacity: count), count: count)
}

/// Releases a buffer from `allocateAligned`.
func freeAligned<T>(_ buffer: UnsafeMutableBufferPointer<T>) {
    free(UnsafeMutableRawPointer(buffer.baseAddress))
}
