import Raft

/// Where the log restarts after a snapshot: entries up to `index` are in the snapshot file.
struct SnapshotMarker: Sendable, Hashable {
    var index: Index
    var term: Term
}

/// One record of the write-ahead log. Replaying every record in order (``LogView/apply(_:)``)
/// rebuilds the hard state, the snapshot point and the entries after it; a later record
/// supersedes an earlier one.
enum WALRecord: Sendable, Hashable {
    /// The first record of every segment: the hard state and snapshot point when the segment was
    /// started, so that earlier segments can be deleted once a snapshot covers their entries.
    case segmentStart(sequence: UInt64, hardState: HardState, snapshot: SnapshotMarker?)
    /// A log entry; it discards the stored entries from its index on.
    case entry(Entry)
    case hardState(HardState)
    /// A snapshot became durable in its file. A snapshot received from the leader `replacesLog`
    /// (every stored entry goes); a local compaction drops only the entries it covers.
    case snapshot(SnapshotMarker, replacesLog: Bool)
}

/// How a ``WALRecord`` is laid out: `[u32 length][u32 crc32c][u8 type][payload]`, little-endian,
/// where `length` counts the payload bytes and the CRC-32C covers the length, type and payload.
///
/// Payloads (types in brackets): segment start [1] `version u8 (1), sequence u64, hard state,
/// has-snapshot u8, then index u64, term u64 if it has one`; entry [2] (see `RaftEncoding.swift`);
/// hard state [3]; snapshot [4] `index u64, term u64, replaces-log u8`.
enum RecordFrame {
    static let headerSize = 9
    private static let formatVersion: UInt8 = 1

    /// What lies at an offset of a segment.
    enum Content {
        case record(WALRecord, end: Int)
        /// The framing or checksum is wrong: a torn write, or corruption.
        case damaged(reason: String)
        /// The checksum holds but the payload does not decode: never a torn write.
        case undecodable(reason: String)
    }

    static func append(_ record: WALRecord, to writer: inout BinaryWriter) {
        let start = writer.count
        writer.write(UInt32(0))  // length, filled in below
        writer.write(UInt32(0))  // checksum, filled in below
        switch record {
        case .segmentStart(let sequence, let hardState, let snapshot):
            writer.write(UInt8(1))
            writer.write(formatVersion)
            writer.write(sequence)
            writer.write(hardState)
            writer.write(UInt8(snapshot == nil ? 0 : 1))
            if let snapshot { write(snapshot, to: &writer) }
        case .entry(let entry):
            writer.write(UInt8(2))
            writer.write(entry)
        case .hardState(let hardState):
            writer.write(UInt8(3))
            writer.write(hardState)
        case .snapshot(let marker, let replacesLog):
            writer.write(UInt8(4))
            write(marker, to: &writer)
            writer.write(UInt8(replacesLog ? 1 : 0))
        }
        writer.overwrite(UInt32(writer.count - start - headerSize), at: start)
        let crc = checksum(writer.bytes, recordAt: start, end: writer.count)
        writer.overwrite(crc, at: start + 4)
    }

    static func read(_ bytes: [UInt8], at offset: Int) -> Content {
        guard let end = intactRecordEnd(bytes, at: offset) else {
            return .damaged(reason: damage(bytes, at: offset))
        }
        var reader = BinaryReader(bytes[(offset + headerSize - 1)..<end])
        do throws(MalformedData) {
            let record = try decode(&reader)
            try reader.expectEnd("the record")
            return .record(record, end: end)
        } catch {
            return .undecodable(reason: error.reason)
        }
    }

    /// Whether a record with a correct length and checksum starts at `offset`; returns its end.
    static func intactRecordEnd(_ bytes: [UInt8], at offset: Int) -> Int? {
        guard bytes.count - offset >= headerSize else { return nil }
        let length = Int(littleEndianUInt32(bytes, at: offset))
        guard length > 0, length <= bytes.count - offset - headerSize else { return nil }
        let end = offset + headerSize + length
        guard checksum(bytes, recordAt: offset, end: end) == littleEndianUInt32(bytes, at: offset + 4) else { return nil }
        return end
    }

    private static func damage(_ bytes: [UInt8], at offset: Int) -> String {
        let left = bytes.count - offset
        if left < headerSize { return "the file ends \(left) bytes into a record header" }
        let length = Int(littleEndianUInt32(bytes, at: offset))
        if length == 0 { return "a record of length 0" }
        if length > left - headerSize { return "a record of \(length) bytes runs past the end of the file" }
        return "checksum mismatch"
    }

    private static func checksum(_ bytes: [UInt8], recordAt start: Int, end: Int) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes[start..<start + 4])
        crc.update(bytes[(start + 8)..<end])
        return crc.value
    }

    private static func littleEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * $1) }
    }

    private static func write(_ marker: SnapshotMarker, to writer: inout BinaryWriter) {
        writer.write(marker.index)
        writer.write(marker.term)
    }

    private static func readMarker(_ reader: inout BinaryReader) throws(MalformedData) -> SnapshotMarker {
        SnapshotMarker(index: try reader.readUInt64(), term: try reader.readUInt64())
    }

    private static func readFlag(_ reader: inout BinaryReader) throws(MalformedData) -> Bool {
        switch try reader.readUInt8() {
        case 0: return false
        case 1: return true
        case let other: throw reader.failure("flag byte \(other) is neither 0 nor 1")
        }
    }

    private static func decode(_ reader: inout BinaryReader) throws(MalformedData) -> WALRecord {
        switch try reader.readUInt8() {
        case 1:
            let version = try reader.readUInt8()
            guard version == formatVersion else {
                throw reader.failure("log format version \(version) is not \(formatVersion) (written by another version of flotilla?)")
            }
            let sequence = try reader.readUInt64()
            let hardState = try reader.readHardState()
            let snapshot = try readFlag(&reader) ? try readMarker(&reader) : nil
            return .segmentStart(sequence: sequence, hardState: hardState, snapshot: snapshot)
        case 2:
            return .entry(try reader.readEntry())
        case 3:
            return .hardState(try reader.readHardState())
        case 4:
            return .snapshot(try readMarker(&reader), replacesLog: try readFlag(&reader))
        case let type:
            throw reader.failure("unknown record type \(type) (written by another version of flotilla?)")
        }
    }
}
