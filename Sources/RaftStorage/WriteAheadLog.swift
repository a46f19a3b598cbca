import Glibc
import Raft

/// The write-ahead log in a node's `wal` directory: segment files `<sequence>-<firstIndex>.log`
/// (16 hex digits each; `firstIndex` is the index the next entry had when the segment started),
/// each a run of records (``RecordFrame``) that begins with a segment-start record. Records are
/// only ever appended, to the last segment; a new segment is started once the last one reaches
/// `segmentSize` bytes.
///
/// Durability contract:
/// - ``append(_:)`` returns once all its records are on disk: one `fdatasync` of the last segment,
///   plus, when it starts a new segment, a sync of the previous one and of the new one and its
///   directory.
/// - Opening syncs the last segment and the directory, so that what the log holds is durable even
///   if the previous process died between a write and its sync.
/// - A new segment is written under a temporary name, synced, renamed and its directory synced,
///   and only after the previous segment was synced. So a segment under its final name always
///   holds a complete segment-start record, and every segment but the last is complete: opening
///   accepts damage only at the end of the last segment, where a crash can tear a write.
/// - Segments are deleted oldest first, syncing the directory after each, so the remaining ones
///   are always a suffix of the sequence.
final class WriteAheadLog {
    private struct Segment {
        var sequence: UInt64
        var path: String
        /// The highest entry index written to the segment (0 if none).
        var highestIndex: Index
    }

    /// What the records written so far describe.
    private(set) var view: LogView
    private let directory: String
    private let segmentSize: Int
    private let syncer: Syncer
    private var segments: [Segment]
    /// The last segment, open for appending, and how many of its bytes are written and synced.
    private var tail: File
    private var size: Int
    private var syncedSize: Int

    /// Opens the log in `directory` and replays it. A record torn at the end of the last segment
    /// is dropped and the file truncated there; any other damage throws. A log without segments is
    /// started if `mayCreate`, and reported missing otherwise.
    init(directory: String, segmentSize: Int, mayCreate: Bool, syncer: Syncer) throws(StorageError) {
        self.directory = directory
        self.segmentSize = segmentSize
        self.syncer = syncer
        var found: [Segment] = []
        for name in try FileSystem.list(directory) {
            let path = directory + "/" + name
            if name.hasSuffix(".tmp") {
                try FileSystem.remove(path)  // a segment whose creation a crash interrupted
            } else if name.hasSuffix(".log") {
                guard let (sequence, _) = FileNames.parse(name, suffix: ".log") else {
                    throw .corrupt(path: path, offset: 0, reason: "this is not a segment name (<16 hex digits>-<16 hex digits>.log)")
                }
                found.append(Segment(sequence: sequence, path: path, highestIndex: 0))
            }
        }
        found.sort { $0.sequence < $1.sequence }
        for (previous, next) in zip(found, found.dropFirst()) where next.sequence != previous.sequence + 1 {
            throw .missing(
                path: directory,
                reason: "segment number \(previous.sequence + 1) is missing: the log jumps from \(previous.path) to \(next.path)")
        }
        var view = LogView()
        var segments: [Segment] = []
        for (k, segment) in found.enumerated() {
            segments.append(try Self.replay(segment, isLast: k == found.count - 1, into: &view))
        }
        if let gap = view.missingEntries {
            throw .missing(
                path: segments[0].path,
                reason: "entries \(gap.lowerBound) through \(gap.upperBound) are neither in the snapshot nor in any segment, so a segment before this one is missing")
        }
        if segments.isEmpty && !mayCreate {
            throw .missing(path: directory, reason: "the log has no segment, yet snapshot files exist beside it")
        }
        if let last = segments.last {
            tail = try File(path: last.path, flags: O_RDWR)
            size = try tail.size()
            // The previous process may have died between writing and syncing (or between renaming
            // a new segment and syncing the directory): make what it left durable before anything
            // is acknowledged on the strength of it.
            try syncer.sync(tail, dataOnly: true)
            try FileSystem.syncDirectory(directory, with: syncer)
        } else {
            let first = try Self.createSegment(sequence: 0, state: view, in: directory, syncer: syncer)
            segments = [first.segment]
            tail = first.file
            size = first.size
        }
        syncedSize = size
        self.view = view
        self.segments = segments
    }

    /// Appends `records` and makes them durable; on return, ``view`` includes them. If it throws,
    /// what reached the disk is unknown (``view`` may include records that did not): the log must
    /// not be used again, only reopened.
    func append(_ records: [WALRecord]) throws(StorageError) {
        var batch = BinaryWriter(capacity: 64 * records.count)
        for record in records {
            if size + batch.count >= segmentSize {
                if batch.count > 0 {
                    try write(&batch)
                    try syncTail()
                }
                try startSegment(state: view)
            }
            RecordFrame.append(record, to: &batch)
            view.apply(record)  // in place: a copy of the view would copy every entry it holds
            if case .entry(let e) = record {
                segments[segments.count - 1].highestIndex = max(segments[segments.count - 1].highestIndex, e.index)
            }
        }
        try write(&batch)
        try syncTail()
    }

    /// Deletes the oldest segments while every entry they hold is at or below `index` (covered by
    /// a durable snapshot). The last segment always stays.
    func removeSegments(coveredThrough index: Index) throws(StorageError) {
        while segments.count > 1 && segments[0].highestIndex <= index {
            try FileSystem.remove(segments[0].path)
            try FileSystem.syncDirectory(directory, with: syncer)
            segments.removeFirst()
        }
    }

    // MARK: - Opening

    /// Reads one segment, applies its records to `view`, and returns the segment with its highest
    /// entry index. Truncates a torn record at the end of the last segment.
    private static func replay(_ segment: Segment, isLast: Bool, into view: inout LogView) throws(StorageError) -> Segment {
        var segment = segment
        let bytes = try File(path: segment.path, flags: O_RDONLY).readAll()
        if bytes.isEmpty {
            throw .corrupt(path: segment.path, offset: 0, reason: "the segment is empty, although its start record was synced before it got its name")
        }
        var offset = 0
        while offset < bytes.count {
            switch RecordFrame.read(bytes, at: offset) {
            case .record(let record, let end):
                if offset == 0 {
                    guard case .segmentStart(let sequence, _, _) = record, sequence == segment.sequence else {
                        throw .corrupt(path: segment.path, offset: 0, reason: "the segment does not begin with its own segment-start record")
                    }
                }
                view.apply(record)
                if case .entry(let e) = record { segment.highestIndex = max(segment.highestIndex, e.index) }
                offset = end
            case .undecodable(let reason):
                throw .corrupt(path: segment.path, offset: offset, reason: reason)
            case .damaged(let reason):
                if offset == 0 {
                    throw .corrupt(path: segment.path, offset: 0, reason: "\(reason) in the segment-start record, which was synced before the segment got its name")
                }
                if !isLast {
                    throw .corrupt(path: segment.path, offset: offset, reason: "\(reason) in a segment that was completely written and synced")
                }
                if let intact = firstIntactRecord(in: bytes, after: offset) {
                    throw .corrupt(path: segment.path, offset: offset, reason: "\(reason), and a valid record follows at byte offset \(intact)")
                }
                // A write torn by a crash: it was never acknowledged, so it goes (synced by `init`).
                try File(path: segment.path, flags: O_RDWR).truncate(to: offset)
                return segment
            }
        }
        return segment
    }

    /// Where an intact record starts after `offset`, if anywhere: a damaged record followed by an
    /// intact one was not torn by a crash.
    private static func firstIntactRecord(in bytes: [UInt8], after offset: Int) -> Int? {
        (offset + 1..<bytes.count).first { RecordFrame.intactRecordEnd(bytes, at: $0) != nil }
    }

    // MARK: - Writing

    /// Starts the next segment, beginning with `state`, and makes it the tail.
    private func startSegment(state: LogView) throws(StorageError) {
        let next = try Self.createSegment(sequence: segments[segments.count - 1].sequence + 1, state: state, in: directory, syncer: syncer)
        segments.append(next.segment)
        tail = next.file
        size = next.size
        syncedSize = size
    }

    /// Writes a segment holding just its start record under a temporary name, syncs it, renames
    /// it and syncs the directory.
    private static func createSegment(
        sequence: UInt64, state: LogView, in directory: String, syncer: Syncer
    ) throws(StorageError) -> (segment: Segment, file: File, size: Int) {
        let path = directory + "/" + FileNames.make(sequence, state.lastIndex + 1, suffix: ".log")
        var start = BinaryWriter()
        RecordFrame.append(.segmentStart(sequence: sequence, hardState: state.hardState, snapshot: state.snapshot), to: &start)
        let temporary = try File(path: path + ".tmp", flags: O_WRONLY | O_CREAT | O_TRUNC)
        try temporary.write(start.bytes, at: 0)
        try syncer.sync(temporary, dataOnly: false)
        try FileSystem.rename(temporary.path, to: path)
        try FileSystem.syncDirectory(directory, with: syncer)
        return (Segment(sequence: sequence, path: path, highestIndex: 0), try File(path: path, flags: O_RDWR), start.count)
    }

    private func write(_ batch: inout BinaryWriter) throws(StorageError) {
        try tail.write(batch.bytes, at: size)
        size += batch.count
        batch = BinaryWriter()
    }

    private func syncTail() throws(StorageError) {
        do {
            try syncer.sync(tail, dataOnly: true)
        } catch {
            if case .injectedSyncFailure = error { try tail.truncate(to: syncedSize) }
            throw error
        }
        syncedSize = size
    }
}
