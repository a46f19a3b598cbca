import Raft
import RaftStorage
import Testing

/// What every `LogStorage` must do, checked against `MemoryStorage` and `FileLogStorage` alike;
/// the file storage is also checked after a restart (closed and reopened from its directory).
@Suite struct LogStorageConformanceTests {
    @Test("persist and load round trip: every payload kind, hard state, appended Readys", arguments: Backend.allCases)
    func roundTrip(backend: Backend) throws {
        try withTemporaryDirectory { dir in
            let storage = try RestartableStorage(backend, in: dir)
            #expect(try storage.load() == PersistentState())
            let first = [
                Entry(term: 1, index: 1, payload: .configuration(Configuration(voters: [1, 2, 3]))),
                Entry(term: 1, index: 2, payload: .empty),
                Entry(term: 1, index: 3, payload: .command([])),
                Entry(term: 1, index: 4, payload: .command(Array(0...255))),
            ]
            try storage.persist(ready(entries: first, hardState: HardState(term: 1, vote: 1, commit: 0)))
            try storage.expectLoads(PersistentState(hardState: HardState(term: 1, vote: 1, commit: 0), entries: first))

            let more = entries(from: 5, count: 3, term: 2)
            try storage.persist(ready(entries: more, hardState: HardState(term: 2, vote: 3, commit: 4)))
            try storage.expectLoads(PersistentState(hardState: HardState(term: 2, vote: 3, commit: 4), entries: first + more))
        }
    }

    @Test("a Ready whose entries start at or below the last stored index overwrites that suffix", arguments: Backend.allCases)
    func overwriteSuffix(backend: Backend) throws {
        try withTemporaryDirectory { dir in
            let storage = try RestartableStorage(backend, in: dir)
            let old = entries(from: 1, count: 5, term: 1)
            try storage.persist(ready(entries: old, hardState: HardState(term: 1, commit: 2)))
            // A new leader of term 2 replaces entries 3...5 with one entry.
            let replacement = entries(from: 3, count: 1, term: 2, size: 3)
            try storage.persist(ready(entries: replacement, hardState: HardState(term: 2, commit: 2)))
            try storage.expectLoads(PersistentState(hardState: HardState(term: 2, commit: 2), entries: Array(old[..<2]) + replacement))

            // Overwriting the whole log, from index 1.
            let all = entries(from: 1, count: 2, term: 3, size: 5)
            try storage.persist(ready(entries: all, hardState: HardState(term: 3, commit: 0)))
            try storage.expectLoads(PersistentState(hardState: HardState(term: 3, commit: 0), entries: all))
        }
    }

    @Test("a Ready holding only a hard state", arguments: Backend.allCases)
    func hardStateOnly(backend: Backend) throws {
        try withTemporaryDirectory { dir in
            let storage = try RestartableStorage(backend, in: dir)
            try storage.persist(ready(hardState: HardState(term: 4, vote: 2, commit: 0)))
            try storage.expectLoads(PersistentState(hardState: HardState(term: 4, vote: 2, commit: 0)))
            let log = entries(from: 1, count: 2, term: 4)
            try storage.persist(ready(entries: log))
            try storage.persist(ready(hardState: HardState(term: 5, vote: noNode, commit: 2)))
            try storage.expectLoads(PersistentState(hardState: HardState(term: 5, commit: 2), entries: log))
        }
    }

    @Test("compaction with a local snapshot drops the entries it covers; an older snapshot is ignored", arguments: Backend.allCases)
    func localCompaction(backend: Backend) throws {
        try withTemporaryDirectory { dir in
            let storage = try RestartableStorage(backend, in: dir)
            let log = entries(from: 1, count: 10, term: 1)
            let hardState = HardState(term: 1, vote: 1, commit: 8)
            try storage.persist(ready(entries: log, hardState: hardState))
            let s6 = snapshot(index: 6, term: 1)
            try storage.compact(s6)
            try storage.expectLoads(PersistentState(hardState: hardState, snapshot: s6, entries: Array(log[6...])))
            try storage.compact(snapshot(index: 4, term: 1))
            try storage.compact(s6)
            try storage.expectLoads(PersistentState(hardState: hardState, snapshot: s6, entries: Array(log[6...])))
            let s10 = snapshot(index: 10, term: 1, voters: [1, 2])
            try storage.compact(s10)
            try storage.expectLoads(PersistentState(hardState: hardState, snapshot: s10, entries: []))
        }
    }

    @Test("a snapshot received from the leader replaces the whole log", arguments: Backend.allCases)
    func installReceivedSnapshot(backend: Backend) throws {
        try withTemporaryDirectory { dir in
            let storage = try RestartableStorage(backend, in: dir)
            // Entries 1...8, of which 6...8 conflict with the leader's log: all of them go.
            try storage.persist(ready(entries: entries(from: 1, count: 8, term: 1), hardState: HardState(term: 1, commit: 3)))
            try storage.compact(snapshot(index: 2, term: 1))
            let received = snapshot(index: 7, term: 3, voters: [1, 2, 3, 4], size: 1000)
            let after = entries(from: 8, count: 2, term: 3)
            try storage.persist(ready(entries: after, hardState: HardState(term: 3, commit: 7), snapshot: received))
            try storage.expectLoads(PersistentState(hardState: HardState(term: 3, commit: 7), snapshot: received, entries: after))

            // A second snapshot with no entries after it.
            let next = snapshot(index: 20, term: 4, voters: [2, 3, 4])
            try storage.persist(ready(hardState: HardState(term: 4, commit: 20), snapshot: next))
            try storage.expectLoads(PersistentState(hardState: HardState(term: 4, commit: 20), snapshot: next))
        }
    }

    @Test("entries after a snapshot, including a Ready that starts inside the snapshot", arguments: Backend.allCases)
    func entriesAfterSnapshot(backend: Backend) throws {
        try withTemporaryDirectory { dir in
            let storage = try RestartableStorage(backend, in: dir)
            let received = snapshot(index: 10, term: 2)
            try storage.persist(ready(hardState: HardState(term: 2, commit: 10), snapshot: received))
            let first = entries(from: 11, count: 3, term: 2)
            try storage.persist(ready(entries: first))
            // Entries 9...14 of term 3: those the snapshot holds are skipped, 11...13 are overwritten.
            let straddling = entries(from: 9, count: 6, term: 3)
            try storage.persist(ready(entries: straddling, hardState: HardState(term: 3, commit: 12)))
            try storage.expectLoads(
                PersistentState(hardState: HardState(term: 3, commit: 12), snapshot: received, entries: Array(straddling[2...])))
        }
    }

    @Test("a Ready whose entries the snapshot already covers changes nothing", arguments: Backend.allCases)
    func entriesCoveredBySnapshot(backend: Backend) throws {
        try withTemporaryDirectory { dir in
            let storage = try RestartableStorage(backend, in: dir)
            let received = snapshot(index: 10, term: 2)
            try storage.persist(ready(hardState: HardState(term: 2, commit: 10), snapshot: received))
            let after = entries(from: 11, count: 3, term: 2)
            try storage.persist(ready(entries: after))
            try storage.persist(ready(entries: entries(from: 8, count: 3, term: 2)))
            try storage.expectLoads(PersistentState(hardState: HardState(term: 2, commit: 10), snapshot: received, entries: after))
        }
    }

    @Test("a RaftNode restarted from load() has the same term, vote, commit and log", arguments: Backend.allCases)
    func raftNodeRestartsFromLoad(backend: Backend) throws {
        try withTemporaryDirectory { dir in
            let storage = try RestartableStorage(backend, in: dir)
            let bootstrap = Configuration(voters: [1])
            var node = try RaftNode(config: RaftConfig(id: 1), state: storage.load(), bootstrap: bootstrap, random: SplitMix64(seed: 3))
            func drain() throws {
                for _ in 0..<100 where node.hasReady {
                    let rd = node.ready()
                    try storage.persist(rd)
                    node.advance(rd)
                }
                #expect(!node.hasReady)
            }
            for _ in 0..<100 where node.role != .leader {
                node.tick()
                try drain()
            }
            try #require(node.role == .leader)
            for k in 0..<6 {
                _ = try node.propose([UInt8(k), 1, 2, 3])
                try drain()
            }
            try storage.compact(try node.compact(through: 4, snapshotData: [4, 4, 4]))
            _ = try node.propose([[7], [8], [9]])
            try drain()

            try storage.restart()
            let restarted = try RaftNode(config: RaftConfig(id: 1), state: storage.load(), bootstrap: bootstrap, random: SplitMix64(seed: 3))
            #expect(restarted.term == node.term && restarted.vote == node.vote && restarted.commitIndex == node.commitIndex)
            #expect(restarted.firstIndex == 5 && restarted.lastIndex == node.lastIndex && node.lastIndex == 10)
            #expect((5...10).map(restarted.entry(at:)) == (5...10).map(node.entry(at:)))
            #expect(restarted.snapshot == node.snapshot && restarted.configuration == bootstrap)
        }
    }
}
