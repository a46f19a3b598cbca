import Foundation
public import FlotillaProto
public import GRPCCore
public import GRPCNIOTransportHTTP2
import RaftTransport
import Synchronization

/// A client of a whole cluster: it tries the nodes it knows, follows leader hints, retries across
/// failovers, and numbers its proposals so that a retried proposal is applied once.
///
/// Use it inside ``withCluster(_:_:)``, which keeps its connections running.
public final class ClusterClient: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    private let addresses: [String]
    private let clients: [String: GRPCClient<HTTP2ClientTransport.Posix>]
    private struct State {
        var leader: String?
        /// Sessions not in use, with the last sequence number each used. A proposal borrows one,
        /// so that each session has at most one proposal outstanding and its sequence numbers
        /// are applied in order (the cluster remembers only each session's latest).
        var idleSessions: [(id: String, sequence: UInt64)] = []
    }
    private let state = Mutex(State())
    /// Give up on a request after this long.
    public let timeout: Duration
    /// The longest pause between two attempts (pauses double from 10 ms up to this).
    public let maxBackoff: Duration

    private init(addresses: [String], timeout: Duration, maxBackoff: Duration) throws {
        self.addresses = addresses
        self.timeout = timeout
        self.maxBackoff = maxBackoff
        var clients: [String: GRPCClient<HTTP2ClientTransport.Posix>] = [:]
        for address in addresses {
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
                throw Failure(description: "'\(address)' is not host:port")
            }
            clients[address] = GRPCClient(transport: try makeClientTransport(host: String(address[..<colon]), port: port))
        }
        self.clients = clients
    }

    /// Runs `body` with a client of the nodes at `addresses` (host:port), then closes its connections.
    public static func withCluster<T: Sendable>(
        _ addresses: [String], timeout: Duration = .seconds(10), maxBackoff: Duration = .milliseconds(320),
        _ body: @Sendable (ClusterClient) async throws -> T
    ) async throws -> T {
        let client = try ClusterClient(addresses: addresses, timeout: timeout, maxBackoff: maxBackoff)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            for c in client.clients.values { group.addTask { try? await c.runConnections(); return nil } }
            defer {
                for c in client.clients.values { c.beginGracefulShutdown() }
            }
            let result = try await body(client)
            group.cancelAll()
            return result
        }
    }

    /// Proposes `command`; retried (with the same session and sequence number) until a leader
    /// applies it, so that it is applied once. Safe to call concurrently.
    public func propose(_ command: [UInt8]) async throws -> Flotilla_V1_ProposeResponse {
        let session: (id: String, sequence: UInt64) = state.withLock { $0.idleSessions.popLast() } ?? (UUID().uuidString, 0)
        let request = Flotilla_V1_ProposeRequest.with {
            $0.clientID = session.id
            $0.sequence = session.sequence + 1
            $0.command = Data(command)
        }
        // Whatever the outcome, the session's next proposal uses a higher number.
        defer { state.withLock { $0.idleSessions.append((session.id, request.sequence)) } }
        return try await withRetries { client in
            try await Flotilla_V1_ControlPlane.Client(wrapping: client).propose(request)
        }
    }

    /// A linearizable read through whichever node answers.
    public func read(_ query: [UInt8]) async throws -> Flotilla_V1_ReadResponse {
        let request = Flotilla_V1_ReadRequest.with { $0.query = Data(query) }
        return try await withRetries { try await Flotilla_V1_ControlPlane.Client(wrapping: $0).read(request) }
    }

    /// The status of one node, or nil if it does not answer within `timeout`.
    public func status(of address: String, timeout: Duration = .seconds(2)) async -> Flotilla_V1_NodeStatus? {
        guard let client = clients[address] else { return nil }
        var options = CallOptions.defaults
        options.timeout = timeout
        return try? await Flotilla_V1_ControlPlane.Client(wrapping: client).status(Flotilla_V1_StatusRequest(), options: options)
    }

    public func transferLeadership(to target: UInt64) async throws {
        let request = Flotilla_V1_TransferLeadershipRequest.with { $0.target = target }
        _ = try await withRetries { try await Flotilla_V1_ControlPlane.Client(wrapping: $0).transferLeadership(request) }
    }

    /// Runs `call` on the leader: follows leader hints, retries retryable failures on the next
    /// node after a back-off, until `timeout` (default: the client's) has passed.
    public func call<R: Sendable>(
        timeout: Duration? = nil, _ call: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        try await withRetries(timeout: timeout, call)
    }

    /// Runs `call` once on the node at `address` (one of this client's): no hint following, no
    /// retry. For tests that must know which node answered (the chaos suite's pinned clients).
    public func callOnce<R: Sendable>(
        on address: String, _ call: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        guard let client = clients[address] else { throw Failure(description: "\(address) is not one of this client's nodes") }
        return try await call(client)
    }

    /// The nodes this client knows (host:port).
    public var nodeAddresses: [String] { addresses }

    /// Borrows a session (client id, next sequence number) for one exactly-once proposal; the
    /// session's next proposal uses a higher number whatever the outcome.
    public func withSession<R: Sendable>(_ body: (_ clientID: String, _ sequence: UInt64) async throws -> R) async throws -> R {
        let session: (id: String, sequence: UInt64) = state.withLock { $0.idleSessions.popLast() } ?? (UUID().uuidString, 0)
        defer { state.withLock { $0.idleSessions.append((session.id, session.sequence + 1)) } }
        return try await body(session.id, session.sequence + 1)
    }

    private func withRetries<R: Sendable>(
        timeout: Duration? = nil, _ call: (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout ?? self.timeout)
        var next = state.withLock { $0.leader } ?? addresses[0]
        var backoff: Duration = .milliseconds(10)
        // What the last few attempts met, and how long each took: the error when all fail.
        var attempts: [String] = []
        var attemptCount = 0
        func note(_ address: String, _ what: String, since began: ContinuousClock.Instant) {
            attemptCount += 1
            attempts.append("\(address) \(what) (\(Self.millis(clock.now - began)) ms)")
            if attempts.count > 6 { attempts.removeFirst() }
        }
        var tried = 0
        var hops = 0
        while clock.now < deadline {
            let began = clock.now
            do {
                let result = try await call(clients[next]!)
                state.withLock { $0.leader = next }
                return result
            } catch let error as RPCError {
                note(next, error.message, since: began)
                if error.code == .failedPrecondition, let hint = error.metadata[stringValues: "leader-address"].first(where: { _ in true }),
                    clients[hint] != nil
                {
                    // Follow the hint at once, but not in a tight loop: two nodes can point at
                    // each other for a moment around an election.
                    hops += 1
                    if hops > 2 {
                        try await Task.sleep(for: backoff)
                        backoff = min(backoff * 2, maxBackoff)
                    }
                    next = hint
                    continue
                }
                // Errors that retrying cannot fix; everything else (no leader yet, leader change,
                // timeout, overload, node down) is retried on the next node after a back-off.
                if [.invalidArgument, .aborted, .internalError].contains(error.code) {
                    throw Failure(description: "\(next): \(error.message)")
                }
            } catch {
                note(next, "\(error)", since: began)
            }
            tried += 1
            next = addresses[tried % addresses.count]
            try await Task.sleep(for: backoff)
            backoff = min(backoff * 2, maxBackoff)
        }
        let last = attempts.isEmpty ? "no node answered" : attempts.joined(separator: "; ")
        throw Failure(
            description: "gave up after \(timeout ?? self.timeout) and \(attemptCount) attempts; the last: \(last)")
    }

    private static func millis(_ d: Duration) -> Int64 {
        d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }
}
