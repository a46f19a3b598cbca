import Raft
@testable import RaftStorage
import Testing

/// Segment rotation, what compaction deletes, injected sync faults, and the checksum.
@Suite struct SegmentAndFaultTests {
    /// Readys of one 30-byte entry each (about 60 bytes of log), from index 1 on, with a hard state
    /// every `hardStateEvery` entries.
    private func smallReadys(count: Int, hardStateEvery: Int = 4) -> [Ready] {
        (1...count).map { (k: Int) -> Ready in
            let hardState: HardState? = k % hardStateEvery == 0 ? HardState(term: 1, vote: 1, commit: Index(k - 1)) : nil
            return ready(entries: entries(from: Index(k), count: 1, term: 1, size: 30), hardState: hardState)
        }
    }

    @Test("segments rotate at segmentSize and replay across them")
    func rotation() throws {
        try withTemporaryDirectory { dir in
            let node = dir + "/node"
            var reference = MemoryStorage()
            do {
                let storage = try FileLogStorage(directory: node, segmentSize: 300)
                for rd in smallReadys(count: 40) {
                    try storage.persist(rd)
                    reference.persist(rd)
                }
                // One Ready bigger than a segment goes into one segment and the next starts after it.
                let big = ready(entries: entries(from: 41, count: 20, term: 2, size: 30), hardState: HardState(term: 2, vote: 2, commit: 40))
                try storage.persist(big)
                reference.persist(big)
                #expect(try storage.load() == reference.load())
            }
            let names = try segmentPaths(node).map { $0.split(separator: "/").last! }
            #expect(names.count >= 8)
            for (k, name) in names.enumerated() {
                let (sequence, _) = try #require(FileNames.parse(String(name), suffix: ".log"))
                #expect(sequence == UInt64(k))
            }
            #expect(try FileLogStorage(directory: node, segmentSize: 300).load() == reference.load())
        }
    }

    @Test("compaction deletes the segments whose entries the snapshot covers, and older snapshot files")
    func compactionDeletesCoveredFiles() throws {
        try withTemporaryDirectory { dir in
            let node = dir + "/node"
            var reference = MemoryStorage()
            do {
                let storage = try FileLogStorage(directory: node, segmentSize: 300)
                // The hard state is recorded once, in the first segment, which compaction deletes:
                // the segments after it must carry it.
                for rd in [ready(hardState: HardState(term: 1, vote: 3, commit: 0))] + smallReadys(count: 40, hardStateEvery: 100) {
                    try storage.persist(rd)
                    reference.persist(rd)
                }
                let before = try segmentPaths(node)
                // A segment holds the entries from its name's first index to the next segment's.
                let firstIndexes = try before.map { path in
                    try #require(FileNames.parse(String(path.split(separator: "/").last!), suffix: ".log")).1
                }
                let covered = zip(before, firstIndexes.dropFirst()).filter { $0.1 - 1 <= 20 }.count
                try #require(covered >= 2)

                let s20 = snapshot(index: 20, term: 1)
                try storage.compact(s20)
                reference.compact(s20)
                // (Appending the snapshot record may have started a new segment.)
                #expect(try segmentPaths(node).filter(before.contains) == Array(before.dropFirst(covered)))
                #expect(try snapshotPaths(node) == [node + "/snap/" + FileNames.make(1, 20, suffix: ".snap")])

                let s38 = snapshot(index: 38, term: 1)
                try storage.compact(s38)
                reference.compact(s38)
                #expect(try snapshotPaths(node) == [node + "/snap/" + FileNames.make(1, 38, suffix: ".snap")])
                #expect(try segmentPaths(node).count <= 2)  // the one holding entry 39 (if not the tail), and the tail
                #expect(try storage.load() == reference.load())
            }
            // A restart replays the remaining segments only, and the log goes on.
            let restarted = try FileLogStorage(directory: node, segmentSize: 300)
            #expect(try restarted.load() == reference.load())
            #expect(try restarted.load().hardState == HardState(term: 1, vote: 3, commit: 0))
            let next = ready(entries: entries(from: 41, count: 1, term: 1), hardState: HardState(term: 1, vote: 1, commit: 41))
            try restarted.persist(next)
            reference.persist(next)
            #expect(try restarted.load() == reference.load())
        }
    }

    @Test("a Ready with many entries is made durable with one sync (group commit)")
    func oneSyncPerReady() throws {
        try withTemporaryDirectory { dir in
            let storage = try FileLogStorage(directory: dir + "/node", faults: .init(failSyncAfter: 2))
            try storage.persist(ready(entries: entries(from: 1, count: 64, term: 1, size: 128), hardState: HardState(term: 1, commit: 0)))
            #expect(throws: StorageError.injectedSyncFailure(path: try segmentPaths(dir + "/node").last!, sync: 2)) {
                try storage.persist(ready(entries: entries(from: 65, count: 1, term: 1)))
            }
        }
    }

    @Test("failSyncAfter makes persist throw; reopened, the store holds only what was synced before")
    func failedSyncDuringPersist() throws {
        try withTemporaryDirectory { dir in
            let node = dir + "/node"
            let readys = smallReadys(count: 4)
            do {
                let storage = try FileLogStorage(directory: node, faults: .init(syncDelay: .milliseconds(1), failSyncAfter: 3))
                try storage.persist(readys[0])
                try storage.persist(readys[1])
                let failure = #expect(throws: StorageError.self) { try storage.persist(readys[2]) }
                guard case .injectedSyncFailure(_, 3)? = failure else {
                    Issue.record("expected the third sync to fail, got \(String(describing: failure))")
                    return
                }
                #expect(throws: StorageError.unusable(after: failure!)) { try storage.persist(readys[3]) }
                #expect(throws: StorageError.unusable(after: failure!)) { try storage.load() }
            }
            var reference = MemoryStorage()
            reference.persist(readys[0])
            reference.persist(readys[1])
            #expect(try FileLogStorage(directory: node).load() == reference.load())
        }
    }

    @Test("SyncFaultControl switches faults while the store runs: a slow sync, then a failing one")
    func faultsSwitchedAtRunTime() throws {
        try withTemporaryDirectory { dir in
            let node = dir + "/node"
            let readys = smallReadys(count: 4)
            let control = SyncFaultControl()
            do {
                let storage = try FileLogStorage(directory: node, control: control)
                try storage.persist(readys[0])
                control.setDelay(.milliseconds(30))
                let start = ContinuousClock.now
                try storage.persist(readys[1])
                // A lower bound only: the sync slept first.
                #expect(start.duration(to: .now) >= .milliseconds(30))
                control.setDelay(.zero)
                control.failNextSync()
                let failure = #expect(throws: StorageError.self) { try storage.persist(readys[2]) }
                guard case .injectedSyncFailure? = failure else {
                    Issue.record("expected an injected sync failure, got \(String(describing: failure))")
                    return
                }
                #expect(throws: StorageError.unusable(after: failure!)) { try storage.persist(readys[3]) }
            }
            var reference = MemoryStorage()
            reference.persist(readys[0])
            reference.persist(readys[1])
            // Reopened (without faults: a failure is consumed), only what was synced is there.
            #expect(try FileLogStorage(directory: node, control: control).load() == reference.load())
        }
    }

    @Test("a sync failing at any step of a compaction leaves the state before it", arguments: 1...3)
    func failedSyncDuringCompaction(failingSync: Int) throws {
        try withTemporaryDirectory { dir in
            let node = dir + "/node"
            var reference = MemoryStorage()
            for rd in smallReadys(count: 8) {
                reference.persist(rd)
            }
            do {
                let storage = try FileLogStorage(directory: node)
                for rd in smallReadys(count: 8) { try storage.persist(rd) }
            }
            do {
                // Syncs: 1 the snapshot file, 2 the snap directory after the rename, 3 the log record.
                let storage = try FileLogStorage(directory: node, faults: .init(failSyncAfter: failingSync))
                #expect(throws: StorageError.self) { try storage.compact(snapshot(index: 5, term: 1)) }
            }
            #expect(try FileLogStorage(directory: node).load() == reference.load())
            #expect(try snapshotPaths(node).isEmpty)
        }
    }

    @Test("entries that do not continue the log are refused without harming the store")
    func nonContiguousEntries() throws {
        try withTemporaryDirectory { dir in
            let storage = try FileLogStorage(directory: dir + "/node")
            let log = entries(from: 1, count: 3, term: 1)
            try storage.persist(ready(entries: log))
            #expect(throws: StorageError.entriesNotContiguous(first: 5, lastStored: 3)) {
                try storage.persist(ready(entries: entries(from: 5, count: 1, term: 1)))
            }
            try storage.persist(ready(entries: entries(from: 4, count: 1, term: 1)))
            #expect(try storage.load().entries == log + entries(from: 4, count: 1, term: 1))
        }
    }

    @Test("CRC-32C of \"123456789\" is the standard check value")
    func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)[...]) == 0xE306_9283)
        #expect(CRC32C.checksum([]) == 0)
    }
}
