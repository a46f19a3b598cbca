public import FlotillaProto
public import GRPCCore
import GRPCNIOTransportHTTP2
public import Raft

/// The network ``PeerTransport``: one long-lived gRPC client stream (`RaftPeer.Send`) to each peer,
/// carrying batches of messages, like etcd's peer streams.
///
/// Each peer has its own bounded outbox and its own task, so a slow or dead peer never delays the
/// others: when its outbox is full the oldest batches are dropped (Raft resends what matters). A
/// broken stream is reopened after a short back-off; the connection underneath is reused.
public final class GRPCPeerTransport: PeerTransport {
    public struct Peer: Sendable, Hashable {
        public var id: NodeID
        public var host: String
        public var port: Int
        public init(id: NodeID, host: String, port: Int) {
            self.id = id
            self.host = host
            self.port = port
        }
    }

    private let peers: [Peer]
    private let outboxes: [NodeID: Outbox]

    /// - Parameter outboxCapacity: batches kept per peer while its stream is slow or down.
    public init(peers: [Peer], outboxCapacity: Int = 1024) {
        self.peers = peers
        outboxes = Dictionary(uniqueKeysWithValues: peers.map { ($0.id, Outbox(capacity: outboxCapacity)) })
    }

    public func send(_ messages: [Message]) {
        if messages.count == 1 {
            outboxes[messages[0].to]?.push(messages)
            return
        }
        var byPeer: [NodeID: [Message]] = [:]
        for m in messages { byPeer[m.to, default: []].append(m) }
        for (peer, batch) in byPeer { outboxes[peer]?.push(batch) }
    }

    /// Keeps a stream open to every peer until cancelled.
    public func run() async {
        await withDiscardingTaskGroup { group in
            for peer in peers {
                let outbox = outboxes[peer.id]!
                group.addTask { await Self.runStream(to: peer, outbox: outbox) }
            }
        }
    }

    private static func runStream(to peer: Peer, outbox: Outbox) async {
        guard let transport = try? makeClientTransport(host: peer.host, port: peer.port) else { return }
        let client = GRPCClient(transport: transport)
        await withDiscardingTaskGroup { group in
            group.addTask { try? await client.runConnections() }
            let raftPeer = Flotilla_V1_RaftPeer.Client(wrapping: client)
            var backoff: Duration = .milliseconds(10)
            while !Task.isCancelled {
                do {
                    _ = try await raftPeer.send(
                        request: StreamingClientRequest(of: Flotilla_V1_RaftBatch.self) { writer in
                            while let batch = await outbox.next() { try await writer.write(Flotilla_V1_RaftBatch(batch)) }
                        })
                    if Task.isCancelled { break }
                    backoff = .milliseconds(10)
                } catch {
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .milliseconds(500))
                }
            }
            client.beginGracefulShutdown()
        }
    }
}

/// The receiving side of ``GRPCPeerTransport``: hands every decoded batch to `deliver`.
public struct RaftPeerService: Flotilla_V1_RaftPeer.SimpleServiceProtocol {
    private let deliver: @Sendable ([Message]) -> Void

    public init(deliver: @escaping @Sendable ([Message]) -> Void) { self.deliver = deliver }

    public func send(
        request: RPCAsyncSequence<Flotilla_V1_RaftBatch, any Error>, context: ServerContext
    ) async throws -> Flotilla_V1_PeerAck {
        for try await batch in request {
            do {
                deliver(try [Message](batch))
            } catch {
                throw RPCError(code: .invalidArgument, message: "malformed Raft batch from \(context.remotePeer): \(error)")
            }
        }
        return Flotilla_V1_PeerAck()
    }
}
