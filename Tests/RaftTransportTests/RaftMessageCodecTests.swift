import FlotillaProto
import Foundation
import Raft
import RaftTransport
import SwiftProtobuf
import Testing

// Every value below is non-default (no 0, false or empty), so a field the codec forgets to copy
// shows up as a difference after the round trip.

private let configuration = Raft.Configuration(voters: [7, 3, 11])
private let metadata = SnapshotMetadata(index: 41, term: 6, configuration: configuration)
private let entries: [Entry] = [
    Entry(term: 5, index: 18, payload: .empty),
    Entry(term: 6, index: 19, payload: .command([0x00, 0xff, 0x7f, 0x80])),
    Entry(term: 6, index: 20, payload: .configuration(Raft.Configuration(voters: [3, 7, 11, 13]))),
]

private func message(_ payload: Raft.Message.Payload) -> Raft.Message {
    Raft.Message(from: 3, to: 11, term: 6, payload: payload)
}

/// One sample of each payload case.
private let samples: [Raft.Message] = [
    message(.voteRequest(VoteRequest(preVote: true, lastIndex: 17, lastTerm: 4, transfer: true))),
    message(.voteResponse(VoteResponse(preVote: true, granted: true))),
    message(.append(AppendRequest(prevIndex: 17, prevTerm: 4, entries: entries, commit: 16))),
    message(.appendResponse(AppendResponse(success: true, index: 20, hintIndex: 12, hintTerm: 3))),
    message(.heartbeat(Heartbeat(commit: 19, readRound: 9))),
    message(.heartbeatResponse(HeartbeatResponse(readRound: 9))),
    message(.snapshot(SnapshotChunk(metadata: metadata, totalSize: 10, offset: 6, data: [1, 2, 3, 4], done: true))),
    message(.snapshotResponse(SnapshotResponse(snapshotIndex: 41, accepted: true, nextOffset: 10, done: true, matchIndex: 41))),
    message(.timeoutNow),
    message(.readIndex(requestID: 77)),
    message(.readIndexResponse(requestID: 77, index: 19)),
]

/// The case's name. No `default:`, so a new payload case fails to compile here until it has a sample.
private func caseName(_ payload: Raft.Message.Payload) -> String {
    switch payload {
    case .voteRequest: "voteRequest"
    case .voteResponse: "voteResponse"
    case .append: "append"
    case .appendResponse: "appendResponse"
    case .heartbeat: "heartbeat"
    case .heartbeatResponse: "heartbeatResponse"
    case .snapshot: "snapshot"
    case .snapshotResponse: "snapshotResponse"
    case .timeoutNow: "timeoutNow"
    case .readIndex: "readIndex"
    case .readIndexResponse: "readIndexResponse"
    }
}

/// Encodes, serializes, parses and decodes.
private func throughTheWire(_ m: Raft.Message) throws -> Raft.Message {
    let bytes: [UInt8] = try Flotilla_V1_RaftMessage(m).serializedBytes()
    return try Raft.Message(Flotilla_V1_RaftMessage(serializedBytes: bytes))
}

/// The field a `WireError` names.
private func field(of error: WireError?) -> String? {
    switch error {
    case .missingPayload(let field)?: field
    case .invalidField(let field, _)?: field
    case nil: nil
    }
}

/// Decodes `wire`, expecting an `.invalidField` error for `expectedField`.
private func expectInvalid(
    _ wire: Flotilla_V1_RaftMessage, field expectedField: String, sourceLocation: SourceLocation = #_sourceLocation
) {
    let error = #expect(throws: WireError.self, sourceLocation: sourceLocation) { try Raft.Message(wire) }
    guard case .invalidField(let f, let reason)? = error else {
        Issue.record("expected invalidField(\(expectedField)), got \(String(describing: error))", sourceLocation: sourceLocation)
        return
    }
    #expect(f == expectedField, sourceLocation: sourceLocation)
    #expect(!reason.isEmpty, sourceLocation: sourceLocation)
}

@Suite struct RoundTripTests {
    @Test func samplesCoverEveryPayloadCase() {
        #expect(Set(samples.map { caseName($0.payload) }).count == 11)
    }

    @Test(arguments: samples)
    func messageRoundTrips(_ m: Raft.Message) throws {
        #expect(try throughTheWire(m) == m)
        #expect(try Raft.Message(Flotilla_V1_RaftMessage(m)) == m)
    }

    @Test func wireFieldsCarryTheValues() {
        let w = Flotilla_V1_RaftMessage(samples[2])
        #expect(w.from == 3 && w.to == 11 && w.term == 6)
        guard case .append(let a)? = w.payload else { Issue.record("not an append"); return }
        #expect(a.prevIndex == 17 && a.prevTerm == 4 && a.commit == 16 && a.entries.count == 3)
        #expect(a.entries[1].command == Data([0x00, 0xff, 0x7f, 0x80]))
        #expect(a.entries[2].configuration.voters == [3, 7, 11, 13])
        if case .empty? = a.entries[0].payload {} else { Issue.record("entry 0 is not empty") }
        guard case .snapshot(let s)? = Flotilla_V1_RaftMessage(samples[6]).payload else {
            Issue.record("not a snapshot"); return
        }
        #expect(s.metadata.index == 41 && s.metadata.term == 6 && s.metadata.configuration.voters == [3, 7, 11])
        #expect(s.totalSize == 10 && s.offset == 6 && s.data == Data([1, 2, 3, 4]) && s.done)
    }

    @Test func edgeValuesRoundTrip() throws {
        let big = Raft.Message(
            from: .max, to: 1, term: .max,
            payload: .append(AppendRequest(
                prevIndex: .max - 2, prevTerm: .max - 1,
                entries: [
                    Entry(term: .max - 1, index: .max - 1, payload: .command([])),
                    Entry(term: .max, index: .max, payload: .command(Array(repeating: 0xab, count: 100_000))),
                ],
                commit: .max)))
        #expect(try throughTheWire(big) == big)
        let emptyAppend = message(.append(AppendRequest(prevIndex: 0, prevTerm: 0, entries: [], commit: 0)))
        #expect(try throughTheWire(emptyAppend) == emptyAppend)
        let emptySnapshot = message(.snapshot(SnapshotChunk(
            metadata: SnapshotMetadata(index: 1, term: 1, configuration: .empty), totalSize: 0, offset: 0, data: [], done: true)))
        #expect(try throughTheWire(emptySnapshot) == emptySnapshot)
        let firstChunk = message(.snapshot(SnapshotChunk(metadata: metadata, totalSize: 10, offset: 0, data: [9, 8], done: false)))
        #expect(try throughTheWire(firstChunk) == firstChunk)
    }

    @Test func entriesConfigurationsAndMetadataRoundTrip() throws {
        for entry in entries {
            let bytes: [UInt8] = try Flotilla_V1_Entry(entry).serializedBytes()
            #expect(try Entry(Flotilla_V1_Entry(serializedBytes: bytes)) == entry)
        }
        let c: [UInt8] = try Flotilla_V1_Configuration(configuration).serializedBytes()
        #expect(try Raft.Configuration(Flotilla_V1_Configuration(serializedBytes: c)) == configuration)
        let m: [UInt8] = try Flotilla_V1_SnapshotMetadata(metadata).serializedBytes()
        #expect(try SnapshotMetadata(Flotilla_V1_SnapshotMetadata(serializedBytes: m)) == metadata)
    }

    @Test func configurationVotersMayComeInAnyOrder() throws {
        let wire = Flotilla_V1_Configuration.with { $0.voters = [11, 3, 7] }
        #expect(try Raft.Configuration(wire) == configuration)
    }

    @Test func batchRoundTripsInOrder() throws {
        let bytes: [UInt8] = try Flotilla_V1_RaftBatch(samples).serializedBytes()
        let decoded = try [Raft.Message](Flotilla_V1_RaftBatch(serializedBytes: bytes))
        #expect(decoded == samples)
        #expect(try [Raft.Message](Flotilla_V1_RaftBatch([])) == [])
    }
}

@Suite struct MalformedInputTests {
    @Test func messageWithoutPayload() {
        let wire = Flotilla_V1_RaftMessage.with { $0.from = 1; $0.to = 2; $0.term = 3 }
        #expect(throws: WireError.missingPayload("payload")) { try Raft.Message(wire) }
    }

    /// A payload case added by a newer sender arrives as an unknown field: this build sees no payload.
    @Test func unknownPayloadCaseFromANewerSender() throws {
        // from = 1, to = 2, then field 15 (length-delimited, empty), which this proto does not define.
        let bytes: [UInt8] = [0x08, 0x01, 0x10, 0x02, 0x7a, 0x00]
        let wire = try Flotilla_V1_RaftMessage(serializedBytes: bytes)
        #expect(throws: WireError.missingPayload("payload")) { try Raft.Message(wire) }
    }

    @Test func entryWithoutPayload() {
        var wire = Flotilla_V1_RaftMessage(samples[2])
        wire.append.entries[1].payload = nil
        #expect(throws: WireError.missingPayload("append.entries[1].payload")) { try Raft.Message(wire) }
        #expect(throws: WireError.missingPayload("payload")) {
            try Entry(Flotilla_V1_Entry.with { $0.term = 1; $0.index = 1 })
        }
    }

    @Test func nodeZeroInFromOrTo() {
        for m in samples {
            var w = Flotilla_V1_RaftMessage(m)
            w.from = 0
            expectInvalid(w, field: "from")
            w = Flotilla_V1_RaftMessage(m)
            w.to = 0
            expectInvalid(w, field: "to")
        }
    }

    @Test func appendWithAGap() {
        var wire = Flotilla_V1_RaftMessage(samples[2])
        wire.append.entries[2].index = 21  // 18, 19, 21
        expectInvalid(wire, field: "append.entries[2].index")
    }

    @Test func appendNotStartingAtPrevIndexPlusOne() {
        var wire = Flotilla_V1_RaftMessage(samples[2])
        wire.append.prevIndex = 16  // entries start at 18
        expectInvalid(wire, field: "append.entries[0].index")
        wire.append.prevIndex = 18  // entries start at the prev index itself
        expectInvalid(wire, field: "append.entries[0].index")
    }

    @Test func appendWithEntriesOutOfOrderOrRepeated() {
        var wire = Flotilla_V1_RaftMessage(samples[2])
        wire.append.entries.swapAt(1, 2)
        expectInvalid(wire, field: "append.entries[1].index")
        wire = Flotilla_V1_RaftMessage(samples[2])
        wire.append.entries[2] = wire.append.entries[1]
        expectInvalid(wire, field: "append.entries[2].index")
    }

    @Test func appendPastTheLastIndex() {
        var wire = Flotilla_V1_RaftMessage(samples[2])
        wire.append.prevIndex = .max
        wire.append.entries = [.with { $0.term = 6; $0.index = 0; $0.empty = .init() }]
        expectInvalid(wire, field: "append.entries[0].index")
    }

    @Test func appendWithImpossibleTerms() {
        var wire = Flotilla_V1_RaftMessage(samples[2])
        wire.append.entries[2].term = 5  // 5, 6, 5: terms go down along the log
        expectInvalid(wire, field: "append.entries[2].term")
        wire = Flotilla_V1_RaftMessage(samples[2])
        wire.append.prevTerm = 6  // the first entry (term 5) is older than the one before it
        expectInvalid(wire, field: "append.entries[0].term")
        wire = Flotilla_V1_RaftMessage(samples[2])
        wire.term = 5  // entries of term 6 from a leader of term 5
        expectInvalid(wire, field: "append.entries[1].term")
        wire = Flotilla_V1_RaftMessage(samples[2])
        wire.append.prevTerm = 0
        wire.append.entries[0].term = 0
        expectInvalid(wire, field: "append.entries[0].term")
    }

    @Test func snapshotChunkPastTheTotalSize() {
        var wire = Flotilla_V1_RaftMessage(samples[6])  // offset 6 + 4 bytes of 10
        wire.snapshot.data.append(5)
        expectInvalid(wire, field: "snapshot.data")
        wire = Flotilla_V1_RaftMessage(samples[6])
        wire.snapshot.offset = 11
        wire.snapshot.data = Data()
        expectInvalid(wire, field: "snapshot.data")
        wire = Flotilla_V1_RaftMessage(samples[6])
        wire.snapshot.offset = .max >> 1  // fits in Int; offset + count would overflow
        expectInvalid(wire, field: "snapshot.data")
    }

    @Test func snapshotChunkDoneFlagDisagreesWithItsEnd() {
        var wire = Flotilla_V1_RaftMessage(samples[6])
        wire.snapshot.totalSize = 11  // says done, but one byte is missing
        expectInvalid(wire, field: "snapshot.done")
        wire = Flotilla_V1_RaftMessage(samples[6])
        wire.snapshot.done = false  // reaches the end, but does not say done
        expectInvalid(wire, field: "snapshot.done")
    }

    @Test func snapshotSizesBeyondInt() {
        var wire = Flotilla_V1_RaftMessage(samples[6])
        wire.snapshot.totalSize = .max
        expectInvalid(wire, field: "snapshot.total_size")
        wire = Flotilla_V1_RaftMessage(samples[7])
        wire.snapshotResponse.nextOffset = UInt64(Int.max) + 1
        expectInvalid(wire, field: "snapshot_response.next_offset")
    }

    @Test func snapshotWithoutMetadataOrConfiguration() {
        var wire = Flotilla_V1_RaftMessage(samples[6])
        wire.snapshot.clearMetadata()
        expectInvalid(wire, field: "snapshot.metadata")
        wire = Flotilla_V1_RaftMessage(samples[6])
        wire.snapshot.metadata.clearConfiguration()
        expectInvalid(wire, field: "snapshot.metadata.configuration")
    }

    @Test func configurationWithNodeZeroOrADuplicate() {
        var wire = Flotilla_V1_RaftMessage(samples[2])
        wire.append.entries[2].configuration.voters = [3, 0, 7]
        expectInvalid(wire, field: "append.entries[2].configuration.voters")
        wire.append.entries[2].configuration.voters = [3, 7, 3]
        expectInvalid(wire, field: "append.entries[2].configuration.voters")
        wire = Flotilla_V1_RaftMessage(samples[6])
        wire.snapshot.metadata.configuration.voters = [0]
        expectInvalid(wire, field: "snapshot.metadata.configuration.voters")
    }

    @Test func batchNamesTheBadMessage() {
        var batch = Flotilla_V1_RaftBatch(samples)
        batch.messages[4].from = 0
        let error = #expect(throws: WireError.self) { try [Raft.Message](batch) }
        #expect(field(of: error) == "messages[4].from")
        batch = Flotilla_V1_RaftBatch(samples)
        batch.messages[2].append.entries[0].payload = nil
        #expect(throws: WireError.missingPayload("messages[2].append.entries[0].payload")) {
            try [Raft.Message](batch)
        }
    }

    @Test func errorsDescribeThemselves() {
        #expect(WireError.missingPayload("payload").description == "missing payload: payload is not set")
        #expect(
            WireError.invalidField("from", reason: "node id 0 is reserved for no node").description
                == "invalid field from: node id 0 is reserved for no node")
    }
}
