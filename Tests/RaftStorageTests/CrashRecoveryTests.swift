import Raft
@testable import RaftStorage
import Testing

/// What opening a `FileLogStorage` does with damaged files: a write torn by a crash at the end of
/// the log is dropped; any other damage stops the node with an error naming the file and offset.
@Suite struct CrashRecoveryTests {
    /// Readys persisted before the one a crash tears: two terms, an overwritten entry, hard states.
    private let history: [Ready] = [
        ready(entries: entries(from: 1, count: 3, term: 1), hardState: HardState(term: 1, vote: 1, commit: 1)),
        ready(entries: entries(from: 3, count: 2, term: 2, size: 20), hardState: HardState(term: 2, vote: 2, commit: 2)),
        ready(hardState: HardState(term: 2, vote: 2, commit: 4)),
    ]

    enum LastRecord: String, CaseIterable, CustomTestStringConvertible {
        case entry, hardState
        var testDescription: String { rawValue }
        /// A Ready that the log stores as exactly one record.
        var ready: Ready {
            switch self {
            case .entry: RaftStorageTests.ready(entries: entries(from: 5, count: 1, term: 2, size: 100))
            case .hardState: RaftStorageTests.ready(hardState: HardState(term: 3, vote: 1, commit: 4))
            }
        }
    }

    /// Persists `readys` into `directory`, returning the last segment's size after each.
    private func persist(_ readys: [Ready], in directory: String) throws -> [Int] {
        let storage = try FileLogStorage(directory: directory)
        return try readys.map { rd in
            try storage.persist(rd)
            return try bytes(of: segmentPaths(directory).last!).count
        }
    }

    private func expected(after readys: [Ready]) -> PersistentState {
        var memory = MemoryStorage()
        for rd in readys { memory.persist(rd) }
        return memory.load()
    }

    @Test("a record torn at any byte of the end of the log is dropped, and the file truncated there", arguments: LastRecord.allCases)
    func tornLastRecord(last: LastRecord) throws {
        try withTemporaryDirectory { dir in
            let node = dir + "/node"
            let start = try persist(history, in: node).last!
            let end = try persist([last.ready], in: node)[0]
            let segment = try segmentPaths(node).last!
            let full = try bytes(of: segment)
            try #require(end == full.count && end > start)
            for cut in start..<end {
                try overwrite(segment, with: Array(full[..<cut]))
                #expect(try FileLogStorage(directory: node).load() == expected(after: history), "cut at byte \(cut)")
                #expect(try bytes(of: segment).count == start, "cut at byte \(cut)")
            }
            try overwrite(segment, with: full)
            #expect(try FileLogStorage(directory: node).load() == expected(after: history + [last.ready]))
        }
    }

    enum Garbage: String, CaseIterable, CustomTestStringConvertible {
        /// What a file extended but not yet written holds after a power cut.
        case zeros
        case pattern
        /// The start of a record header and nothing else.
        case halfHeader
        var testDescription: String { rawValue }
        var bytes: [UInt8] {
            switch self {
            case .zeros: [UInt8](repeating: 0, count: 4096)
            case .pattern: (0..<300).map { UInt8(truncatingIfNeeded: 0xA5 &+ $0 &* 7) }
            case .halfHeader: [40, 0, 0, 0, 0x12]
            }
        }
    }

    @Test("garbage after the last record is dropped", arguments: Garbage.allCases)
    func garbageTail(garbage: Garbage) throws {
        try withTemporaryDirectory { dir in
            let node = dir + "/node"
            let size = try persist(history, in: node).last!
            let segment = try segmentPaths(node).last!
            try overwrite(segment, with: bytes(of: segment) + garbage.bytes)
            #expect(try FileLogStorage(directory: node).load() == expected(after: history))
            #expect(try bytes(of: segment).count == size)
            // And the log goes on from there.
            let storage = try FileLogStorage(directory: node)
            try storage.persist(LastRecord.entry.ready)
            #expect(try storage.load() == expected(after: history + [LastRecord.entry.ready]))
        }
    }

    @Test(
        "a damaged record followed by valid ones stops the node, naming the file and the record's offset",
        arguments: [0, 3, 4, 8, 9, 30])
    func damageBeforeValidRecords(byteInRecord: Int) throws {
        try withTemporaryDirectory { dir in
            let node = dir + "/node"
            let recordStart = try persist(history, in: node)[0]  // the first record of the second Ready
            let segment = try segmentPaths(node).last!
            try flipByte(at: recordStart + byteInRecord, of: segment)
            let error = #expect(throws: StorageError.self) { try FileLogStorage(directory: node) }
            guard case .corrupt(let path, let offset, _)? = error else {
                Issue.record("expected .corrupt, got \(String(describing: error))")
                return
            }
            #expect(path == segment && offset == recordStart)
            let message = String(describing: error!)
            #expect(message.contains(segment) && message.contains("byte offset \(recordStart)"))
            #expect(message.contains("restore this node's data directory from a healthy peer"))
            // It stays refused: nothing was truncated.
            #expect(throws: StorageError.self) { try FileLogStorage(directory: node) }
        }
    }

    @Test("damage at the end of a segment that is not the last stops the node")
    func damageInEarlierSegment() throws {
        try withTemporaryDirectory { dir in
            let node = dir + "/node"
            do {
                let storage = try FileLogStorage(directory: node, segmentSize: 200)
                for k in 0..<20 { try storage.persist(ready(entries: entries(from: Index(k + 1), count: 1, term: 1, size: 30))) }
            }
            let segments = try segmentPaths(node)
            try #require(segments.count >= 3)
            let last = try bytes(of: segments[1]).count - 1
            try flipByte(at: last, of: segments[1])
            let error = #expect(throws: StorageError.self) { try FileLogStorage(directory: node, segmentSize: 200) }
            guard case .corrupt(let path, let offset, _)? = error else {
                Issue.record("expected .corrupt, got \(String(describing: error))")
                return
            }
            #expect(path == segments[1] && offset < last)
        }
    }

    @Test("a damaged snapshot file stops the node, naming it")
    func damagedSnapshot() throws {
        try withTemporaryDirectory { dir in
            let node = dir + "/node"
            do {
                let storage = try FileLogStorage(directory: node)
                for rd in history { try storage.persist(rd) }
                try storage.compact(snapshot(index: 3, term: 2, size: 500))
            }
            let file = try #require(try snapshotPaths(node).first)
            try flipByte(at: 200, of: file)
            let error = #expect(throws: StorageError.self) { try FileLogStorage(directory: node) }
            guard case .corrupt(let path, _, _)? = error else {
                Issue.record("expected .corrupt, got \(String(describing: error))")
                return
            }
            #expect(path == file && String(describing: error).contains(file))
        }
    }

    @Test("a missing segment or snapshot file stops the node, naming it")
    func missingFiles() throws {
        try withTemporaryDirectory { dir in
            let node = dir + "/node"
            do {
                let storage = try FileLogStorage(directory: node, segmentSize: 200)
                for k in 0..<20 { try storage.persist(ready(entries: entries(from: Index(k + 1), count: 1, term: 1, size: 30))) }
                try storage.compact(snapshot(index: 2, term: 1))
            }
            let snap = try #require(try snapshotPaths(node).first)
            let snapBytes = try bytes(of: snap)
            try FileSystem.remove(snap)
            let noSnapshot = #expect(throws: StorageError.self) { try FileLogStorage(directory: node, segmentSize: 200) }
            guard case .missing(let path, _)? = noSnapshot else {
                Issue.record("expected .missing, got \(String(describing: noSnapshot))")
                return
            }
            #expect(path == snap)
            try overwrite(snap, with: snapBytes)

            let segments = try segmentPaths(node)
            try #require(segments.count >= 4)
            try FileSystem.remove(segments[2])
            let noSegment = #expect(throws: StorageError.self) { try FileLogStorage(directory: node, segmentSize: 200) }
            #expect(String(describing: noSegment).contains(segments[1]) && String(describing: noSegment).contains(segments[3]))
        }
    }

    @Test("a directory in use by another store is refused")
    func lockedDirectory() throws {
        try withTemporaryDirectory { dir in
            let storage = try FileLogStorage(directory: dir + "/node")
            #expect(throws: StorageError.locked(path: dir + "/node/LOCK")) { try FileLogStorage(directory: dir + "/node") }
            withExtendedLifetime(storage) {}
        }
    }
}
