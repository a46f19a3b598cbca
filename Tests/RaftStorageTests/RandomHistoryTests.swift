import Raft
import RaftStorage
import Testing

/// Seeded random histories of appends, overwrites by new leaders, hard states, compactions,
/// received snapshots and restarts, on tiny segments so that segments rotate and are deleted all
/// the time: after every step `FileLogStorage` must load what `MemoryStorage` holds.
@Suite struct RandomHistoryTests {
    @Test("FileLogStorage matches MemoryStorage over random histories", arguments: [UInt64(1), 2, 3, 4, 5, 6])
    func matchesMemoryStorage(seed: UInt64) throws {
        try withTemporaryDirectory { dir in
            var random = SplitMix64(seed: seed)
            var reference = MemoryStorage()
            var storage: FileLogStorage! = try FileLogStorage(directory: dir + "/node", segmentSize: 256)
            var term: Term = 1
            for step in 0..<300 {
                let state = reference.load()
                let snapshotIndex = state.snapshot?.metadata.index ?? 0
                let lastIndex = reference.lastIndex
                switch Int.random(in: 0..<20, using: &random) {
                case 0..<9:  // the leader appends
                    let count = Int.random(in: 1...5, using: &random)
                    let rd = ready(entries: entries(from: lastIndex + 1, count: count, term: term, size: Int.random(in: 0...40, using: &random)))
                    try storage.persist(rd)
                    reference.persist(rd)
                case 9..<12:  // a new leader overwrites a suffix (possibly starting inside the snapshot)
                    term += 1
                    let from = Index.random(in: max(snapshotIndex, 1)...(lastIndex + 1), using: &random)
                    // At least one entry after the snapshot (MemoryStorage empties the log otherwise).
                    let count = Int.random(in: 1...4, using: &random) + Int(snapshotIndex + 1 - min(from, snapshotIndex + 1))
                    let rd = ready(
                        entries: entries(from: from, count: count, term: term),
                        hardState: HardState(term: term, vote: 1, commit: snapshotIndex))
                    try storage.persist(rd)
                    reference.persist(rd)
                case 12..<14:  // hard state only
                    let rd = ready(hardState: HardState(term: term, vote: 2, commit: Index.random(in: snapshotIndex...lastIndex, using: &random)))
                    try storage.persist(rd)
                    reference.persist(rd)
                case 14..<17 where lastIndex > snapshotIndex:  // local compaction
                    let s = snapshot(index: Index.random(in: (snapshotIndex + 1)...lastIndex, using: &random), term: term, size: 20)
                    try storage.compact(s)
                    reference.compact(s)
                case 17:  // a snapshot from the leader, with entries after it or not
                    term += 1
                    let s = snapshot(index: lastIndex + Index.random(in: 0...3, using: &random), term: term, voters: [1, 2], size: 30)
                    let after = Bool.random(using: &random) ? entries(from: s.metadata.index + 1, count: 2, term: term) : []
                    let rd = ready(entries: after, hardState: HardState(term: term, commit: s.metadata.index), snapshot: s)
                    try storage.persist(rd)
                    reference.persist(rd)
                default:  // restart: close the files (releasing the lock), then reopen
                    storage = nil
                    storage = try FileLogStorage(directory: dir + "/node", segmentSize: 256)
                }
                #expect(try storage.load() == reference.load(), "seed \(seed), step \(step)")
            }
        }
    }
}
