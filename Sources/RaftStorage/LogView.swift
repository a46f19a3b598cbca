import Raft

/// The state a sequence of ``WALRecord``s describes: the hard state, the snapshot point and the
/// entries after it. The store replays its segments into one when it opens and keeps it current
/// as it appends, so the log is read once, sequentially, per process.
///
/// Replay may start at any segment, since segments whose entries a snapshot covers are deleted:
/// an entry that does not continue the known entries (its predecessors were in a deleted segment)
/// starts them afresh, and ``missingEntries`` reports whatever such a gap leaves uncovered.
struct LogView: Sendable, Hashable {
    private(set) var hardState = HardState()
    private(set) var snapshot: SnapshotMarker?
    private(set) var entries: [Entry] = []
    /// The index of `entries[0]`, or of the next entry when there is none.
    private(set) var firstIndex: Index = 1

    var snapshotIndex: Index { snapshot?.index ?? 0 }
    var lastIndex: Index { firstIndex + Index(entries.count) - 1 }

    /// Entries neither in the snapshot nor in the log (some segment is missing), if any.
    var missingEntries: ClosedRange<Index>? {
        firstIndex > snapshotIndex + 1 ? (snapshotIndex + 1)...(firstIndex - 1) : nil
    }

    mutating func apply(_ record: WALRecord) {
        switch record {
        case .segmentStart(_, let hardState, let snapshot):
            self.hardState = hardState
            if let snapshot { compact(through: snapshot) }
        case .entry(let entry):
            append(entry)
        case .hardState(let hardState):
            self.hardState = hardState
        case .snapshot(let marker, replacesLog: true):
            snapshot = marker
            entries = []
            firstIndex = marker.index + 1
        case .snapshot(let marker, replacesLog: false):
            compact(through: marker)
        }
    }

    private mutating func append(_ entry: Entry) {
        guard entry.index > snapshotIndex else { return }  // the snapshot already holds it
        if entry.index >= firstIndex && entry.index <= lastIndex + 1 {
            entries.removeLast(Int(lastIndex + 1 - entry.index))  // a new leader overwrote them
        } else {
            entries = []  // its predecessors were in a deleted segment
            firstIndex = entry.index
        }
        entries.append(entry)
    }

    /// A newer snapshot drops the entries it covers; an older one changes nothing.
    private mutating func compact(through marker: SnapshotMarker) {
        guard marker.index > snapshotIndex else { return }
        snapshot = marker
        let covered = marker.index < firstIndex ? 0 : Int(min(marker.index - firstIndex + 1, Index(entries.count)))
        entries.removeFirst(covered)
        firstIndex = max(firstIndex + Index(covered), marker.index + 1)
    }
}
