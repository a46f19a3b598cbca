import Glibc

/// Issues every `fsync`/`fdatasync` of one store, so that injected ``FileLogStorage/Faults`` can
/// delay or fail them. Faults take effect once ``arm()`` is called, after the store has opened.
final class Syncer {
    private let faults: FileLogStorage.Faults
    private let control: SyncFaultControl?
    private var armed = false
    private var count = 0

    init(faults: FileLogStorage.Faults, control: SyncFaultControl?) {
        self.faults = faults
        self.control = control
    }

    func arm() { armed = true }

    /// Syncs `file` (see ``File/sync(dataOnly:)``); returns once it is durable.
    func sync(_ file: File, dataOnly: Bool) throws(StorageError) {
        if armed {
            count += 1
            if faults.syncDelay > .zero { sleep(faults.syncDelay) }
            if count == faults.failSyncAfter { throw .injectedSyncFailure(path: file.path, sync: count) }
            if let control {
                let (delay, fail) = control.take()
                if delay > .zero { sleep(delay) }
                if fail { throw .injectedSyncFailure(path: file.path, sync: count) }
            }
        }
        try file.sync(dataOnly: dataOnly)
    }

    private func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}
