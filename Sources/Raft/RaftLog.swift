/// A node's log as the core sees it: a snapshot point, the entries after it, and the indexes that
/// say what is persisted, committed and applied. The whole log since the last snapshot is kept in
/// memory (as etcd's server does with its `MemoryStorage`); the shell compacts it with snapshots.
///
/// Invariants: `snapshotIndex ≤ applied ≤ committed ≤ lastIndex`, and `entries[k].index == snapshotIndex + 1 + k`.
struct RaftLog: Sendable {
    private(set) var snapshotIndex: Index
    private(set) var snapshotTerm: Term
    private(set) var entries: [Entry]
    var committed: Index
    /// Entries up to here were handed to the state machine.
    var applied: Index
    /// Entries up to here are known to be on stable storage.
    private(set) var stableIndex: Index
    /// Configurations in force from each index on: the snapshot's, then one per configuration entry.
    /// Never empty.
    private(set) var configurations: [(index: Index, configuration: Configuration)]

    init(snapshot: SnapshotMetadata?, entries: [Entry], commit: Index, bootstrap: Configuration) {
        snapshotIndex = snapshot?.index ?? 0
        snapshotTerm = snapshot?.term ?? 0
        self.entries = entries
        committed = max(commit, snapshotIndex)
        applied = snapshotIndex
        stableIndex = snapshotIndex + Index(entries.count)
        configurations = [(snapshotIndex, snapshot?.configuration ?? bootstrap)]
        for e in entries { if case .configuration(let c) = e.payload { configurations.append((e.index, c)) } }
    }

    var firstIndex: Index { snapshotIndex + 1 }
    var lastIndex: Index { snapshotIndex + Index(entries.count) }
    var lastTerm: Term { entries.last?.term ?? snapshotTerm }

    /// The configuration of the newest configuration entry in the log (committed or not).
    var configuration: Configuration { configurations[configurations.count - 1].configuration }
    var configurationIndex: Index { configurations[configurations.count - 1].index }
    /// The newest configuration whose entry is committed.
    var committedConfiguration: Configuration { configuration(at: committed) }

    func configuration(at index: Index) -> Configuration {
        var result = configurations[0].configuration
        for c in configurations where c.index <= index { result = c.configuration }
        return result
    }

    /// The term of the entry at `index`, or nil if it is compacted away or beyond the end.
    func term(at index: Index) -> Term? {
        if index == snapshotIndex { return snapshotTerm }
        if index < snapshotIndex || index > lastIndex { return nil }
        return entries[Int(index - snapshotIndex - 1)].term
    }

    func entry(at index: Index) -> Entry? {
        guard index > snapshotIndex, index <= lastIndex else { return nil }
        return entries[Int(index - snapshotIndex - 1)]
    }

    func matchTerm(_ index: Index, _ term: Term) -> Bool { self.term(at: index) == term }

    /// Whether a log ending at (`index`, `term`) is at least as up to date as this one (§5.4.1).
    func isUpToDate(lastIndex index: Index, lastTerm term: Term) -> Bool {
        term > lastTerm || (term == lastTerm && index >= lastIndex)
    }

    /// Entries in `[from, lastIndex]`, at most `maxCount` and `maxBytes` (but at least one), or nil
    /// if `from` is compacted away.
    func entries(from: Index, maxCount: Int, maxBytes: Int = .max) -> [Entry]? {
        guard from > snapshotIndex else { return nil }
        if from > lastIndex { return [] }
        let start = Int(from - snapshotIndex - 1)
        var end = min(entries.count, start + maxCount)
        if maxBytes != .max {
            var bytes = 0
            for k in start..<end {
                bytes += entries[k].byteCount
                if bytes > maxBytes && k > start { end = k; break }
            }
        }
        return Array(entries[start..<end])
    }

    /// Entries not yet on stable storage.
    var unstableEntries: [Entry] {
        stableIndex >= lastIndex ? [] : Array(entries[Int(stableIndex - snapshotIndex)...])
    }

    /// Committed entries not yet handed to the state machine.
    func committedEntriesToApply(max: Int) -> [Entry] {
        guard committed > applied else { return [] }
        let start = Int(applied - snapshotIndex)
        let end = min(Int(committed - snapshotIndex), start + max)
        return Array(entries[start..<end])
    }

    /// The largest index `≤ index` whose term is `≤ term` (and that term), so that a leader can
    /// skip over every entry of a conflicting term in one round trip. Stops at the snapshot.
    func findConflict(byTerm term: Term, atOrBefore index: Index) -> (index: Index, term: Term) {
        var i = min(index, lastIndex)
        while i > snapshotIndex, let t = self.term(at: i), t > term { i -= 1 }
        return (i, self.term(at: i) ?? 0)
    }

    /// Appends `newEntries` (a leader's, or received from a leader), discarding any conflicting
    /// suffix first. Returns false, changing nothing, if that would discard a committed entry.
    mutating func append(_ newEntries: [Entry]) -> Bool {
        guard let first = newEntries.first else { return true }
        // Skip entries already present with the same term; find the first conflict.
        var k = 0
        while k < newEntries.count, let t = term(at: newEntries[k].index), t == newEntries[k].term { k += 1 }
        if k == newEntries.count { return true }
        let conflict = newEntries[k].index
        precondition(conflict > snapshotIndex || first.index > snapshotIndex, "append below the snapshot")
        if conflict <= committed { return false }
        if conflict <= lastIndex { truncate(after: conflict - 1) }
        precondition(conflict == lastIndex + 1, "gap in the log: appending \(conflict) after \(lastIndex)")
        for e in newEntries[k...] {
            entries.append(e)
            if case .configuration(let c) = e.payload { configurations.append((e.index, c)) }
        }
        return true
    }

    /// Drops every entry after `index` (a conflict with the leader's log).
    private mutating func truncate(after index: Index) {
        entries.removeLast(Int(lastIndex - index))
        stableIndex = min(stableIndex, index)
        while configurations.count > 1, configurations[configurations.count - 1].index > index {
            configurations.removeLast()
        }
    }

    mutating func commit(to index: Index) -> Bool {
        guard index > committed else { return false }
        precondition(index <= lastIndex, "commit index \(index) beyond the last index \(lastIndex)")
        committed = index
        return true
    }

    /// The shell reports that entries up to (`index`, `term`) are on stable storage. Ignored if
    /// the log changed at `index` since (a newer leader overwrote it).
    mutating func stable(to index: Index, term: Term) {
        if index > stableIndex, self.term(at: index) == term { stableIndex = index }
    }

    /// Compacts the log behind a snapshot taken at `index` (which must be in the log).
    mutating func compact(through index: Index) {
        guard index > snapshotIndex, let t = term(at: index) else { return }
        let config = configuration(at: index)
        entries.removeFirst(Int(index - snapshotIndex))
        snapshotIndex = index
        snapshotTerm = t
        configurations.removeAll { $0.index <= index }
        configurations.insert((index, config), at: 0)
    }

    /// Replaces the log with a snapshot received from the leader. The snapshot becomes the applied
    /// state: the shell restores the state machine from it before applying anything after it.
    mutating func restore(_ meta: SnapshotMetadata) {
        entries = []
        snapshotIndex = meta.index
        snapshotTerm = meta.term
        committed = meta.index
        applied = meta.index
        stableIndex = meta.index
        configurations = [(meta.index, meta.configuration)]
    }
}
