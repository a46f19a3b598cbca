import Glibc
public import Raft

/// Why durable storage failed. Each case's description names the file and says what to do.
///
/// Damage that a crash can explain (a record torn at the very end of the log) is repaired silently
/// when the store opens; everything else is reported, because continuing could lose or change
/// entries this node has acknowledged.
public enum StorageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A system call failed.
    case io(operation: String, path: String, errno: Int32)
    /// Bytes at `offset` in `path` are damaged in a way an interrupted write cannot explain: valid
    /// records follow them, they are in a file that was completely written, or a checksum-valid
    /// record cannot be decoded.
    case corrupt(path: String, offset: Int, reason: String)
    /// A file the rest of the data directory depends on is missing.
    case missing(path: String, reason: String)
    /// Another process (or another store in this process) uses the data directory.
    case locked(path: String)
    /// The store refuses work because an earlier write or sync failed.
    indirect case unusable(after: StorageError)
    /// A sync failed on purpose (``FileLogStorage/Faults/failSyncAfter``).
    case injectedSyncFailure(path: String, sync: Int)
    /// The entries to persist do not continue the stored log.
    case entriesNotContiguous(first: Index, lastStored: Index)

    public var description: String {
        let rebuild = "restore this node's data directory from a healthy peer, or remove it and re-add the node to the cluster"
        switch self {
        case .io(let operation, let path, let code):
            return "cannot \(operation) \(path): \(String(cString: strerror(code))) (errno \(code)); "
                + "check the disk (free space, permissions, health), then restart the node"
        case .corrupt(let path, let offset, let reason):
            return "\(path) is corrupt at byte offset \(offset): \(reason); this is not an interrupted write, "
                + "so acknowledged data may be damaged and the node must not start: \(rebuild)"
        case .missing(let path, let reason):
            return "\(path) is missing: \(reason); the node must not start: \(rebuild)"
        case .locked(let path):
            return "\(path) is locked by another process: a data directory serves one node at a time; "
                + "stop the other process or give this node its own directory"
        case .unusable(let cause):
            return "storage refuses further work because an earlier write or sync failed (\(cause)); "
                + "what is on disk is uncertain: restart the node, which recovers what was made durable"
        case .injectedSyncFailure(let path, let sync):
            return "sync #\(sync) of \(path) failed on purpose (an injected disk fault); "
                + "the bytes written since the previous sync were discarded, as a power cut would"
        case .entriesNotContiguous(let first, let lastStored):
            return "the entries to persist start at index \(first) but the stored log ends at \(lastStored): "
                + "a Ready was skipped or persisted out of order (a bug in the caller)"
        }
    }
}
