import Raft
import RaftStorage

/// Exactly-once application of retried proposals: a client numbers its proposals, and a retry
/// (after a timeout or a failover) carries the same (client id, sequence). The table of each
/// client's last sequence and result is part of the replicated state, so every node, and every
/// future leader, deduplicates the same way.
struct Sessions {
    private struct Session: Hashable {
        var sequence: UInt64
        var index: Index
        var result: [UInt8]
    }
    private var table: [String: Session] = [:]

    enum Outcome: Equatable {
        /// Apply the command and record its result.
        case apply
        /// Already applied at `index`, with this result.
        case duplicate(index: Index, result: [UInt8])
        /// Older than the client's last applied proposal: the client moved on, nothing to do.
        case stale
    }

    func check(client: String, sequence: UInt64) -> Outcome {
        guard !client.isEmpty, sequence > 0, let s = table[client] else { return .apply }
        if sequence == s.sequence { return .duplicate(index: s.index, result: s.result) }
        return sequence < s.sequence ? .stale : .apply
    }

    mutating func record(client: String, sequence: UInt64, index: Index, result: [UInt8]) {
        guard !client.isEmpty, sequence > 0 else { return }
        table[client] = Session(sequence: sequence, index: index, result: result)
    }

    func encode(into w: inout BinaryWriter) {
        w.write(UInt64(table.count))
        for client in table.keys.sorted() {
            w.write(lengthPrefixed: Array(client.utf8))
            w.write(table[client]!.sequence)
            w.write(table[client]!.index)
            w.write(lengthPrefixed: table[client]!.result)
        }
    }

    static func decode(from r: inout BinaryReader) throws(MalformedData) -> Sessions {
        var s = Sessions()
        let count = try r.readUInt64()
        for _ in 0..<count {
            let client = String(decoding: try r.readLengthPrefixed(), as: UTF8.self)
            let sequence = try r.readUInt64()
            let index = try r.readUInt64()
            s.table[client] = Session(sequence: sequence, index: index, result: try r.readLengthPrefixed())
        }
        return s
    }
}

/// A proposal as it travels in a log entry: who proposed it, its sequence number, the command.
struct ProposalEnvelope: Equatable {
    var client: String
    var sequence: UInt64
    var command: [UInt8]

    var encoded: [UInt8] {
        var w = BinaryWriter(capacity: command.count + client.utf8.count + 20)
        w.write(lengthPrefixed: Array(client.utf8))
        w.write(sequence)
        w.write(lengthPrefixed: command)
        return w.bytes
    }

    init(client: String, sequence: UInt64, command: [UInt8]) {
        self.client = client
        self.sequence = sequence
        self.command = command
    }

    init(decoding bytes: [UInt8]) throws(MalformedData) {
        var r = BinaryReader(bytes[...])
        client = String(decoding: try r.readLengthPrefixed(), as: UTF8.self)
        sequence = try r.readUInt64()
        command = try r.readLengthPrefixed()
        try r.expectEnd("a proposal")
    }
}
