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
