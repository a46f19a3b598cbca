import Glibc
public import Raft

/// Durable ``LogStorage`` in a node's data directory:
///
/// ```
/// <directory>/LOCK                       flock'ed while a store has the directory open
/// <directory>/wal/<sequence>-<firstIndex>.log   the write-ahead log (see WriteAheadLog)
/// <directory>/snap/<term>-<index>.snap   the latest snapshot (see SnapshotDirectory)
/// ```
///
/// Durability contract: ``persist(_:)`` and ``compact(_:)`` return only once everything they
/// wrote is on disk (`fdatasync`/`fsync` of each file, and of its directory after creating or
/// renaming it). A `Ready`'s log records, however many entries it holds, are written with one
/// `write` and made durable with one `fdatasync` (group commit); a snapshot costs two more syncs
/// (its file and directory), starting a new segment three more, and deleting a segment one.
///
/// Opening the store replays the log once, sequentially, and keeps the state in memory (the
/// entries since the snapshot and the snapshot itself, as the core does), so that ``load()``
/// reads nothing. A record torn at the end of the log by a crash is dropped (it was
/// never acknowledged); any other damage throws ``StorageError`` and the node must not start.
///
/// If a write or sync fails, the store refuses all further calls: after a failed `fsync` the
/// kernel's view of the file can no longer be trusted, so the node must restart and recover from
/// what is durable.
///
/// Not `Sendable`: one thread or actor owns a store, as it owns its `RaftNode`.
public final class FileLogStorage: LogStorage {
    /// Held open for the store's lifetime: its `flock` keeps other stores out of the directory.
    private let lock: File
    private let syncer: Syncer
    private let wal: WriteAheadLog
    private let snapshots: SnapshotDirectory
    private var snapshot: Snapshot?
    /// The first failure of a write or sync; set, it makes every call throw.
    private var failure: StorageError?

    /// Opens (or creates) the store in `directory`, recovering it after a crash.
    ///
    /// - Parameters:
    ///   - directory: the node's data directory; created if missing (its parent must exist).
    ///   - segmentSize: a log segment is closed and a new one started once it reaches this many bytes.
    ///   - faults: for chaos tests only; see ``Faults``.
    ///   - control: for chaos tests only: faults switched while the store runs; see ``SyncFaultControl``.
    /// - Throws: ``StorageError``: `.locked` if another store has the directory open, `.corrupt` or
    ///   `.missing` if the data is damaged beyond a torn write, `.io` if a system call fails.
    public init(
        directory: String, segmentSize: Int = 64 << 20, faults: Faults = .none, control: SyncFaultControl? = nil
    ) throws(StorageError) {
        syncer = Syncer(faults: faults, control: control)
        let walPath = directory + "/wal"
        let snapPath = directory + "/snap"
        if try FileSystem.makeDirectory(directory) {
            try FileSystem.syncDirectory(Self.parent(of: directory), with: syncer)
        }
        lock = try File(path: directory + "/LOCK", flags: O_RDWR | O_CREAT)
        try lock.lockExclusively()
        let createdWAL = try FileSystem.makeDirectory(walPath)
        let createdSnap = try FileSystem.makeDirectory(snapPath)
        if createdWAL || createdSnap { try FileSystem.syncDirectory(directory, with: syncer) }
        snapshots = try SnapshotDirectory(path: snapPath, syncer: syncer)
        wal = try WriteAheadLog(directory: walPath, segmentSize: segmentSize, mayCreate: snapshots.isEmpty(), syncer: syncer)
        snapshot = try wal.view.snapshot.map(snapshots.read)
        // Finish what a crash may have interrupted: removing files the latest snapshot made obsolete.
        try snapshots.removeAll(except: wal.view.snapshot)
        try wal.removeSegments(coveredThrough: wal.view.snapshotIndex)
        syncer.arm()
    }

    /// The state as of the last successful ``persist(_:)`` or ``compact(_:)``.
    public func load() throws(StorageError) -> PersistentState {
        if let failure { throw .unusable(after: failure) }
        return PersistentState(hardState: wal.view.hardState, snapshot: snapshot, entries: wal.view.entries)
    }

    /// Makes `ready`'s snapshot, entries and hard state durable, in that order (see ``LogStorage``).
    /// Entries the snapshot already covers are skipped.
    public func persist(_ ready: Ready) throws(StorageError) {
        try guarded { () throws(StorageError) in
            var records: [WALRecord] = []
            if let received = ready.snapshot { records.append(.snapshot(Self.marker(received), replacesLog: true)) }
            // Where the log ends once the snapshot (which replaces it) is stored.
            let snapshotIndex = ready.snapshot?.metadata.index ?? wal.view.snapshotIndex
            let lastIndex = ready.snapshot?.metadata.index ?? wal.view.lastIndex
            let entries = ready.entries.drop { $0.index <= snapshotIndex }
            if let first = entries.first, first.index > lastIndex + 1 {
                throw .entriesNotContiguous(first: first.index, lastStored: lastIndex)
            }
            records += entries.map(WALRecord.entry)
            if let hardState = ready.hardState { records.append(.hardState(hardState)) }
            guard !records.isEmpty else { return }
            if let received = ready.snapshot { try snapshots.write(received) }
            try wal.append(records)
            if let received = ready.snapshot { try adopt(received) }
        }
    }

    /// Stores a snapshot the local state machine took and drops the entries it covers; a snapshot
    /// no newer than the stored one is ignored. Deletes the log segments and the snapshot file it
    /// makes obsolete once it is durable.
    public func compact(_ snapshot: Snapshot) throws(StorageError) {
        try guarded { () throws(StorageError) in
            guard snapshot.metadata.index > wal.view.snapshotIndex else { return }
            try snapshots.write(snapshot)
            try wal.append([.snapshot(Self.marker(snapshot), replacesLog: false)])
            try adopt(snapshot)
        }
    }

    /// Keeps `snapshot`, now durable and named by the log, and deletes what it made obsolete.
    private func adopt(_ snapshot: Snapshot) throws(StorageError) {
        self.snapshot = snapshot
        try snapshots.removeAll(except: Self.marker(snapshot))
        try wal.removeSegments(coveredThrough: snapshot.metadata.index)
    }

    /// Runs a mutation, refusing it after an earlier failure and remembering a new one.
    private func guarded(_ body: () throws(StorageError) -> Void) throws(StorageError) {
        if let failure { throw .unusable(after: failure) }
        do {
            try body()
        } catch {
            if case .entriesNotContiguous = error { throw error }  // refused before writing anything
            failure = error
            throw error
        }
    }

    private static func marker(_ snapshot: Snapshot) -> SnapshotMarker {
        SnapshotMarker(index: snapshot.metadata.index, term: snapshot.metadata.term)
    }

    private static func parent(of path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }
}
