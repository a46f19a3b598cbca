import GRPCCore
import GRPCNIOTransportHTTP2
import Raft
import RaftTransport
import Synchronization

/// What the benchmark needs of a candidate: a receiver on 127.0.0.1 and a sender to one peer.
/// Both candidates are used the same way, in both processes.
protocol BenchTransport: Sendable {
    /// Starts listening on an ephemeral port of 127.0.0.1, handing every received batch to
    /// `deliver`; returns the port.
    func listen(deliver: @escaping @Sendable ([Message]) -> Void) async throws -> Int
    /// Starts the sender to `peer` listening at `port` and returns it; messages sent before the
    /// connection is up wait in its outbox.
    func connect(to peer: NodeID, port: Int) -> any PeerTransport
    /// Stops the sender and the receiver.
    func shutdown() async
}

func makeBenchTransport(_ kind: TransportKind) -> any BenchTransport {
    switch kind {
    case .grpc: return GRPCBenchTransport()
    case .nio: return NIOBenchTransport()
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The production path, unchanged: `GRPCPeerTransport` (one client stream per peer over
/// `makeClientTransport`) sends, `RaftPeerService` in a `GRPCServer` on `HTTP2ServerTransport.Posix`
/// receives — as `flotilla node` wires them.
final class GRPCBenchTransport: BenchTransport {
    private struct State {
        var server: GRPCServer<HTTP2ServerTransport.Posix>?
        var tasks: [Task<Void, Never>] = []
    }
    private let state = Mutex(State())

    func listen(deliver: @escaping @Sendable ([Message]) -> Void) async throws -> Int {
        let server = GRPCServer(
            transport: HTTP2ServerTransport.Posix(
                address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext),
            services: [RaftPeerService(deliver: deliver)])
        let task = Task { _ = try? await server.serve() }
        state.withLock {
            $0.server = server
            $0.tasks.append(task)
        }
        guard let port = try await server.listeningAddress?.ipv4?.port else {
            throw BenchError("the gRPC server did not bind 127.0.0.1")
        }
        return port
    }

    func connect(to peer: NodeID, port: Int) -> any PeerTransport {
        let transport = GRPCPeerTransport(peers: [.init(id: peer, host: "127.0.0.1", port: port)])
        let task = Task { await transport.run() }
        state.withLock { $0.tasks.append(task) }
        return transport
    }

    func shutdown() async {
        let (server, tasks) = state.withLock { s in
            defer { s = State() }
            return (s.server, s.tasks)
        }
        server?.beginGracefulShutdown()
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }
}
