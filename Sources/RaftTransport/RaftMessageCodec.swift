// Conversions between the consensus core's messages (`Raft.Message` and the types it carries) and
// their protobuf form (`Flotilla_V1_*`, generated from Protos/flotilla.proto).
//
// Encoding cannot fail: every value the core produces has a wire form. Decoding reads bytes from
// another process, so it validates and throws a `WireError` naming the offending field instead of
// handing the core something it would misread (or trap on).

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import FlotillaProto
public import Raft

/// Why a protobuf message does not decode into a Raft value.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A `oneof payload` is unset (the sender left it out, or it is a case this build does not
    /// know). The value is the field's path, e.g. `payload` or `append.entries[3].payload`.
    case missingPayload(String)
    /// A field holds a value no correct sender produces. `field` is its path in the proto's names
    /// (e.g. `snapshot.offset`, `messages[2].from`).
    case invalidField(String, reason: String)

    public var description: String {
        switch self {
        case .missingPayload(let field): return "missing payload: \(field) is not set"
        case .invalidField(let field, let reason): return "invalid field \(field): \(reason)"
        }
    }
}

// MARK: - Raft → wire

extension Flotilla_V1_Configuration {
    public init(_ configuration: Raft.Configuration) {
        self.init()
        voters = configuration.voters
    }
}

extension Flotilla_V1_SnapshotMetadata {
    public init(_ metadata: Raft.SnapshotMetadata) {
        self.init()
        index = metadata.index
        term = metadata.term
        configuration = Flotilla_V1_Configuration(metadata.configuration)
    }
}

extension Flotilla_V1_Entry {
    public init(_ entry: Raft.Entry) {
        self.init()
        term = entry.term
        index = entry.index
        switch entry.payload {
        case .empty: payload = .empty(Flotilla_V1_EmptyPayload())
        case .command(let bytes): payload = .command(Data(bytes))
        case .configuration(let c): payload = .configuration(Flotilla_V1_Configuration(c))
        }
    }
}

extension Flotilla_V1_RaftMessage {
    /// The wire form of `message`. Sizes and offsets of the core's snapshot chunks are never negative.
    public init(_ message: Raft.Message) {
        self.init()
        from = message.from
        to = message.to
        term = message.term
        switch message.payload {
        case .voteRequest(let r):
            payload = .voteRequest(.with {
                $0.preVote = r.preVote
                $0.lastIndex = r.lastIndex
                $0.lastTerm = r.lastTerm
                $0.transfer = r.transfer
            })
        case .voteResponse(let r):
            payload = .voteResponse(.with {
                $0.preVote = r.preVote
                $0.granted = r.granted
            })
        case .append(let a):
            payload = .append(.with {
                $0.prevIndex = a.prevIndex
                $0.prevTerm = a.prevTerm
                $0.entries = a.entries.map(Flotilla_V1_Entry.init)
                $0.commit = a.commit
            })
        case .appendResponse(let r):
            payload = .appendResponse(.with {
                $0.success = r.success
                $0.index = r.index
                $0.hintIndex = r.hintIndex
                $0.hintTerm = r.hintTerm
            })
        case .heartbeat(let h):
            payload = .heartbeat(.with {
                $0.commit = h.commit
                $0.readRound = h.readRound
            })
        case .heartbeatResponse(let h):
            payload = .heartbeatResponse(.with { $0.readRound = h.readRound })
        case .snapshot(let s):
            payload = .snapshot(.with {
                $0.metadata = Flotilla_V1_SnapshotMetadata(s.metadata)
                $0.totalSize = UInt64(s.totalSize)
                $0.offset = UInt64(s.offset)
                $0.data = Data(s.data)
                $0.done = s.done
            })
        case .snapshotResponse(let r):
            payload = .snapshotResponse(.with {
                $0.snapshotIndex = r.snapshotIndex
                $0.accepted = r.accepted
                $0.nextOffset = UInt64(r.nextOffset)
                $0.done = r.done
                $0.matchIndex = r.matchIndex
            })
        case .timeoutNow:
            payload = .timeoutNow(Flotilla_V1_TimeoutNow())
        case .readIndex(let requestID):
            payload = .readIndex(.with { $0.requestID = requestID })
        case .readIndexResponse(let requestID, let index):
            payload = .readIndexResponse(.with {
                $0.requestID = requestID
                $0.index = index
            })
        }
    }
}

extension Flotilla_V1_RaftBatch {
    /// One frame carrying `messages` in order.
    public init(_ messages: [Raft.Message]) {
        self.init()
        self.messages = messages.map(Flotilla_V1_RaftMessage.init)
    }
}

// MARK: - wire → Raft

extension Raft.Configuration {
    /// Throws if a voter is node 0 or appears twice; the order of the voters does not matter.
    public init(_ wire: Flotilla_V1_Configuration) throws(WireError) {
        try self.init(wire, path: "")
    }

    init(_ wire: Flotilla_V1_Configuration, path: String) throws(WireError) {
        let field = path + "voters"
        if wire.voters.contains(noNode) {
            throw .invalidField(field, reason: "node id 0 is reserved for no node")
        }
        if Set(wire.voters).count != wire.voters.count {
            throw .invalidField(field, reason: "a voter is listed twice")
        }
        self.init(voters: wire.voters)
    }
}

extension Raft.SnapshotMetadata {
    /// Throws if the configuration is absent.
    public init(_ wire: Flotilla_V1_SnapshotMetadata) throws(WireError) {
        try self.init(wire, path: "")
    }

    init(_ wire: Flotilla_V1_SnapshotMetadata, path: String) throws(WireError) {
        guard wire.hasConfiguration else {
            throw .invalidField(path + "configuration", reason: "missing")
        }
        self.init(
            index: wire.index, term: wire.term,
            configuration: try Raft.Configuration(wire.configuration, path: path + "configuration."))
    }
}

extension Raft.Entry {
    /// Throws if the payload is unset, or the term or index is 0 (terms and indexes start at 1).
    public init(_ wire: Flotilla_V1_Entry) throws(WireError) {
        try self.init(wire, path: "")
    }

    init(_ wire: Flotilla_V1_Entry, path: String) throws(WireError) {
        guard wire.term > 0 else { throw .invalidField(path + "term", reason: "entries have a term of at least 1") }
        guard wire.index > 0 else { throw .invalidField(path + "index", reason: "entries have an index of at least 1") }
        let payload: Raft.Entry.Payload
        switch wire.payload {
        case .empty?: payload = .empty
        case .command(let data)?: payload = .command(Array(data))
        case .configuration(let c)?: payload = .configuration(try Raft.Configuration(c, path: path + "configuration."))
        case nil: throw .missingPayload(path + "payload")
        }
        self.init(term: wire.term, index: wire.index, payload: payload)
    }
}

extension Raft.Message {
    /// Decodes and validates one message: `from` and `to` name real nodes (not 0), the payload is
    /// set, an append's entries follow `prev_index` one by one with terms that never decrease (from
    /// `prev_term` up to the message's term), and a snapshot chunk lies within the snapshot's size
    /// and says `done` exactly when it reaches the end.
    public init(_ wire: Flotilla_V1_RaftMessage) throws(WireError) {
        try self.init(wire, path: "")
    }

    init(_ wire: Flotilla_V1_RaftMessage, path: String) throws(WireError) {
        guard wire.from != noNode else { throw .invalidField(path + "from", reason: "node id 0 is reserved for no node") }
        guard wire.to != noNode else { throw .invalidField(path + "to", reason: "node id 0 is reserved for no node") }
        let payload: Payload
        switch wire.payload {
        case .voteRequest(let r)?:
            payload = .voteRequest(VoteRequest(
                preVote: r.preVote, lastIndex: r.lastIndex, lastTerm: r.lastTerm, transfer: r.transfer))
        case .voteResponse(let r)?:
            payload = .voteResponse(VoteResponse(preVote: r.preVote, granted: r.granted))
        case .append(let a)?:
            payload = .append(try Self.appendRequest(a, messageTerm: wire.term, path: path + "append."))
        case .appendResponse(let r)?:
            payload = .appendResponse(AppendResponse(
                success: r.success, index: r.index, hintIndex: r.hintIndex, hintTerm: r.hintTerm))
        case .heartbeat(let h)?:
            payload = .heartbeat(Heartbeat(commit: h.commit, readRound: h.readRound))
        case .heartbeatResponse(let h)?:
            payload = .heartbeatResponse(HeartbeatResponse(readRound: h.readRound))
        case .snapshot(let s)?:
            payload = .snapshot(try Self.snapshotChunk(s, path: path + "snapshot."))
        case .snapshotResponse(let r)?:
            payload = .snapshotResponse(SnapshotResponse(
                snapshotIndex: r.snapshotIndex, accepted: r.accepted,
                nextOffset: try Self.int(r.nextOffset, path + "snapshot_response.next_offset"),
                done: r.done, matchIndex: r.matchIndex))
        case .timeoutNow?:
            payload = .timeoutNow
        case .readIndex(let r)?:
            payload = .readIndex(requestID: r.requestID)
        case .readIndexResponse(let r)?:
            payload = .readIndexResponse(requestID: r.requestID, index: r.index)
        case nil:
            throw .missingPayload(path + "payload")
        }
        self.init(from: wire.from, to: wire.to, term: wire.term, payload: payload)
    }

    private static func appendRequest(
        _ a: Flotilla_V1_AppendRequest, messageTerm: Term, path: String
    ) throws(WireError) -> AppendRequest {
        var entries: [Raft.Entry] = []
        entries.reserveCapacity(a.entries.count)
        var expectedIndex = a.prevIndex
        var previousTerm = a.prevTerm
        for (i, wireEntry) in a.entries.enumerated() {
            let entryPath = path + "entries[\(i)]."
            let (next, overflow) = expectedIndex.addingReportingOverflow(1)
            guard !overflow else { throw .invalidField(entryPath + "index", reason: "index overflows UInt64") }
            expectedIndex = next
            let entry = try Raft.Entry(wireEntry, path: entryPath)
            guard entry.index == expectedIndex else {
                throw .invalidField(
                    entryPath + "index",
                    reason: "entries must be contiguous from prev_index + 1: expected \(expectedIndex), got \(entry.index)")
            }
            guard entry.term >= previousTerm else {
                throw .invalidField(
                    entryPath + "term",
                    reason: "terms must not decrease along the log: \(entry.term) follows \(previousTerm)")
            }
            guard entry.term <= messageTerm else {
                throw .invalidField(
                    entryPath + "term", reason: "entry term \(entry.term) is newer than the leader's term \(messageTerm)")
            }
            previousTerm = entry.term
            entries.append(entry)
        }
        return AppendRequest(prevIndex: a.prevIndex, prevTerm: a.prevTerm, entries: entries, commit: a.commit)
    }

    private static func snapshotChunk(_ s: Flotilla_V1_SnapshotChunk, path: String) throws(WireError) -> SnapshotChunk {
        guard s.hasMetadata else { throw .invalidField(path + "metadata", reason: "missing") }
        let metadata = try Raft.SnapshotMetadata(s.metadata, path: path + "metadata.")
        let totalSize = try int(s.totalSize, path + "total_size")
        let offset = try int(s.offset, path + "offset")
        guard offset <= totalSize, s.data.count <= totalSize - offset else {
            throw .invalidField(
                path + "data",
                reason: "offset \(offset) + \(s.data.count) bytes exceeds the total size \(totalSize)")
        }
        let reachesEnd = offset + s.data.count == totalSize
        guard s.done == reachesEnd else {
            throw .invalidField(
                path + "done",
                reason: s.done
                    ? "the last chunk must end at the total size \(totalSize), this one ends at \(offset + s.data.count)"
                    : "a chunk that ends at the total size must be the last one")
        }
        return SnapshotChunk(metadata: metadata, totalSize: totalSize, offset: offset, data: Array(s.data), done: s.done)
    }

    private static func int(_ value: UInt64, _ field: String) throws(WireError) -> Int {
        guard let result = Int(exactly: value) else { throw .invalidField(field, reason: "\(value) exceeds Int.max") }
        return result
    }
}

extension Array where Element == Raft.Message {
    /// The messages of a batch, in order. Throws the first invalid message's error, its path
    /// prefixed with `messages[i].`.
    public init(_ batch: Flotilla_V1_RaftBatch) throws(WireError) {
        self = []
        reserveCapacity(batch.messages.count)
        for (i, wire) in batch.messages.enumerated() {
            append(try Raft.Message(wire, path: "messages[\(i)]."))
        }
    }
}
