import FlotillaProto
import GRPCCore
import GRPCInProcessTransport
import Raft
import RaftTransport
import Synchronization
import Testing

/// What a peer received, in order.
private final class Inbox: Sendable {
    private let messages = Mutex<[Raft.Message]>([])
    func append(_ batch: [Raft.Message]) { messages.withLock { $0.append(contentsOf: batch) } }
    var all: [Raft.Message] { messages.withLock { $0 } }
}

/// `RaftPeerService` and the generated client, with the codec, over grpc-swift-2's in-process transport.
@Suite struct PeerServiceTests {
    private let first: [Raft.Message] = [
        Raft.Message(from: 1, to: 2, term: 3, payload: .heartbeat(Heartbeat(commit: 4, readRound: 5))),
        Raft.Message(
            from: 1, to: 2, term: 3,
            payload: .append(AppendRequest(
                prevIndex: 4, prevTerm: 2,
                entries: [Entry(term: 3, index: 5, payload: .command([1, 2, 3]))], commit: 4))),
    ]
    private let second: [Raft.Message] = [
        Raft.Message(from: 1, to: 2, term: 3, payload: .timeoutNow),
    ]

    @Test func batchesArriveDecodedAndInOrder() async throws {
        let inbox = Inbox()
        let transport = InProcessTransport()
        let batches = [first, second]
        try await withGRPCServer(transport: transport.server, services: [RaftPeerService(deliver: inbox.append)]) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                let peer = Flotilla_V1_RaftPeer.Client(wrapping: client)
                let ack = try await peer.send { writer in
                    for batch in batches { try await writer.write(Flotilla_V1_RaftBatch(batch)) }
                }
                #expect(ack == Flotilla_V1_PeerAck())
            }
        }
        #expect(inbox.all == first + second)
    }

    @Test func aMalformedBatchFailsTheStreamWithInvalidArgument() async throws {
        let inbox = Inbox()
        let transport = InProcessTransport()
        var bad = Flotilla_V1_RaftBatch(second)
        bad.messages[0].to = 0
        let batches = [Flotilla_V1_RaftBatch(first), bad]
        try await withGRPCServer(transport: transport.server, services: [RaftPeerService(deliver: inbox.append)]) { _ in
            try await withGRPCClient(transport: transport.client) { client in
                let peer = Flotilla_V1_RaftPeer.Client(wrapping: client)
                let error = await #expect(throws: RPCError.self) {
                    try await peer.send { writer in try await writer.write(contentsOf: batches) }
                }
                #expect(error?.code == .invalidArgument)
                #expect(error?.message.contains("messages[0].to") == true)
            }
        }
        #expect(inbox.all == first)
    }
}
