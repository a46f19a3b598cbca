import Raft

// The binary encoding of the core's types, shared by log records and snapshot files. All integers
// are little-endian; changing any layout here changes the on-disk format.

extension BinaryWriter {
    /// `term u64, index u64, kind u8` then, for a command, its length-prefixed bytes, and for a
    /// configuration, the configuration. Kinds: 0 empty, 1 command, 2 configuration.
    mutating func write(_ entry: Entry) {
        write(entry.term)
        write(entry.index)
        switch entry.payload {
        case .empty:
            write(UInt8(0))
        case .command(let bytes):
            write(UInt8(1))
            write(lengthPrefixed: bytes)
        case .configuration(let configuration):
            write(UInt8(2))
            write(configuration)
        }
    }

    /// `term u64, vote u64, commit u64`.
    mutating func write(_ hardState: HardState) {
        write(hardState.term)
        write(hardState.vote)
        write(hardState.commit)
    }

    /// `count u32`, then each voter's id as a `u64`, in ascending order.
    mutating func write(_ configuration: Configuration) {
        write(UInt32(configuration.voters.count))
        for voter in configuration.voters { write(voter) }
    }

    /// `index u64, term u64`, then the configuration.
    mutating func write(_ metadata: SnapshotMetadata) {
        write(metadata.index)
        write(metadata.term)
        write(metadata.configuration)
    }
}

extension BinaryReader {
    mutating func readEntry() throws(MalformedData) -> Entry {
        let term = try readUInt64()
        let index = try readUInt64()
        switch try readUInt8() {
        case 0: return Entry(term: term, index: index, payload: .empty)
        case 1: return Entry(term: term, index: index, payload: .command(try readLengthPrefixed()))
        case 2: return Entry(term: term, index: index, payload: .configuration(try readConfiguration()))
        case let kind: throw failure("unknown entry kind \(kind)")
        }
    }

    mutating func readHardState() throws(MalformedData) -> HardState {
        HardState(term: try readUInt64(), vote: try readUInt64(), commit: try readUInt64())
    }

    mutating func readConfiguration() throws(MalformedData) -> Configuration {
        let count = try readUInt32()
        var voters: [NodeID] = []
        for _ in 0..<count { voters.append(try readUInt64()) }
        return Configuration(voters: voters)
    }

    mutating func readSnapshotMetadata() throws(MalformedData) -> SnapshotMetadata {
        SnapshotMetadata(index: try readUInt64(), term: try readUInt64(), configuration: try readConfiguration())
    }
}
