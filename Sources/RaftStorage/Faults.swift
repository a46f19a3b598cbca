import Synchronization

extension FileLogStorage {
    /// Faults to inject into a store's syncs, for chaos tests. Off unless passed explicitly to
    /// ``FileLogStorage/init(directory:segmentSize:faults:)``; a real node never sets them.
    ///
    /// They apply to the syncs that ``FileLogStorage/persist(_:)`` and ``FileLogStorage/compact(_:)``
    /// issue (file and directory syncs alike, counted from 1), not to those of opening the store.
    public struct Faults: Sendable, Hashable {
        /// Sleep this long before each sync: a slow disk.
        public var syncDelay: Duration
        /// The sync with this number fails as if the machine lost power just before it: the log
        /// bytes written since the previous sync are discarded and the call throws
        /// ``StorageError/injectedSyncFailure(path:sync:)``. Like after a real failed sync, the
        /// store then refuses further work until it is reopened.
        public var failSyncAfter: Int?

        public init(syncDelay: Duration = .zero, failSyncAfter: Int? = nil) {
            self.syncDelay = syncDelay
            self.failSyncAfter = failSyncAfter
        }

        /// No faults: what a real node uses.
        public static let none = Faults()
    }
}

/// Sync faults switched on and off while a store runs: the chaos suite's slow or failing disk
/// (`flotilla node --disk-fault-file`, a hidden test flag). A real node never creates one.
public final class SyncFaultControl: Sendable {
    private let state = Mutex<(delay: Duration, failNext: Bool)>((.zero, false))

    public init() {}

    /// Every sync from now on sleeps this long first (`.zero`: a healthy disk again).
    public func setDelay(_ delay: Duration) { state.withLock { $0.delay = delay } }

    /// The next sync fails as a power cut would (see ``FileLogStorage/Faults/failSyncAfter``).
    public func failNextSync() { state.withLock { $0.failNext = true } }

    public var delay: Duration { state.withLock { $0.delay } }

    /// The delay for this sync, and whether it must fail (a failure is consumed).
    func take() -> (delay: Duration, fail: Bool) {
        state.withLock { s in
            defer { s.failNext = false }
            return (s.delay, s.failNext)
        }
    }
}
