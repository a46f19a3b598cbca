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
    /// A call that has not answered after this long is also tried on another node (a hedged
    /// request), the first answer winning; nil: never. See ``call(timeout:hedged:_:)``.
    public let hedgeAfter: Duration?

    private init(addresses: [String], timeout: Duration, maxBackoff: Duration, hedgeAfter: Duration?) throws {
        self.addresses = addresses
        self.timeout = timeout
        self.maxBackoff = maxBackoff
        self.hedgeAfter = hedgeAfter
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
        hedgeAfter: Duration? = .milliseconds(250),
        _ body: @Sendable (ClusterClient) async throws -> T
    ) async throws -> T {
        let client = try ClusterClient(addresses: addresses, timeout: timeout, maxBackoff: maxBackoff, hedgeAfter: hedgeAfter)
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
    ///
    /// `hedged` (the default) suits short calls that are safe to send twice (proposals carry their
    /// session and sequence number, reports their fencing token, reads change nothing): a node
    /// that holds the call past ``hedgeAfter`` — a leader that is stopped, cut off or whose disk
    /// hangs answers nothing until its connection times out — does not hold the caller, whose call
    /// also goes to the other nodes until one answers. Pass `false` for long polls and streams.
    public func call<R: Sendable>(
        timeout: Duration? = nil, hedged: Bool = true, _ call: @escaping @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        try await withRetries(timeout: timeout, hedged: hedged, call)
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

    /// What one event of a call's attempts brings.
    private enum Event<R: Sendable>: Sendable {
        case answered(R, from: String)
        case failed(String, any Error, took: Duration)
        /// Attempt number `attempt` has been out for ``hedgeAfter``.
        case hedge(attempt: Int)
        /// A back-off ended: try `next`.
        case retry(next: String)
    }

    /// The attempts of one call: one node at a time, each failure sending the next attempt to the
    /// node a hint names or to the next node after a back-off, while a slow attempt is hedged on
    /// another node. The first answer wins and the others are cancelled. Attempts start until the
    /// deadline; those out then are still awaited.
    private func withRetries<R: Sendable>(
        timeout: Duration? = nil, hedged: Bool = true, _ call: @escaping @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout ?? self.timeout)
        let hedgeAfter = hedged ? self.hedgeAfter : nil
        let maxBackoff = self.maxBackoff
        let clients = self.clients
        let addresses = self.addresses
        return try await withThrowingTaskGroup(of: Event<R>.self) { group in
            var outstanding: Set<String> = []
            var launched = 0
            var backoff: Duration = .milliseconds(10)
            var backingOff = false
            // What the last few attempts met, and how long each took: the error when all fail.
            var attempts: [String] = []
            var attemptCount = 0
            var tried = 0
            var hops = 0

            func launch(_ address: String) {
                outstanding.insert(address)
                launched += 1
                let attempt = launched
                let client = clients[address]!
                group.addTask {
                    let began = ContinuousClock.now
                    do {
                        return .answered(try await call(client), from: address)
                    } catch {
                        return .failed(address, error, took: began.duration(to: .now))
                    }
                }
                if let hedgeAfter {
                    group.addTask {
                        try? await Task.sleep(for: hedgeAfter)
                        return .hedge(attempt: attempt)
                    }
                }
            }
            /// The next node in turn that has no attempt out, if any.
            func nextIdle() -> String? {
                for _ in 0..<addresses.count {
                    tried += 1
                    let a = addresses[tried % addresses.count]
                    if !outstanding.contains(a) { return a }
                }
                return nil
            }
            func retryLater(_ address: String) {
                guard !backingOff else { return }
                backingOff = true
                let pause = backoff
                backoff = min(backoff * 2, maxBackoff)
                group.addTask {
                    try? await Task.sleep(for: pause)
                    return .retry(next: address)
                }
            }

            launch(state.withLock { $0.leader } ?? addresses[0])
            while let event = try await group.next() {
                if Task.isCancelled {
                    group.cancelAll()
                    throw CancellationError()
                }
                switch event {
                case .answered(let result, let address):
                    state.withLock { $0.leader = address }
                    group.cancelAll()
                    return result
                case .hedge(let attempt):
                    // The latest attempt is still out, maybe on a node that will never answer:
                    // try another node too.
                    if attempt == launched, !outstanding.isEmpty, clock.now < deadline, !backingOff, let other = nextIdle() { launch(other) }
                case .retry(let address):
                    backingOff = false
                    guard clock.now < deadline else { break }
                    if !outstanding.contains(address) {
                        launch(address)
                    } else if let other = nextIdle() {
                        launch(other)
                    }
                case .failed(let address, let error, let took):
                    outstanding.remove(address)
                    attemptCount += 1
                    let message = (error as? RPCError)?.message ?? "\(error)"
                    attempts.append("\(address) \(message) (\(Self.millis(took)) ms)")
                    if attempts.count > 6 { attempts.removeFirst() }
                    if let error = error as? RPCError {
                        // Errors that retrying cannot fix; everything else (no leader yet, leader
                        // change, timeout, overload, node down) is retried.
                        if [.invalidArgument, .notFound, .aborted, .internalError, .unimplemented].contains(error.code) {
                            group.cancelAll()
                            throw Failure(description: "\(address): \(error.message)")
                        }
                        if error.code == .failedPrecondition, let hint = error.metadata[stringValues: "leader-address"].first(where: { _ in true }),
                            clients[hint] != nil
                        {
                            guard clock.now < deadline else { break }
                            // Follow the hint at once, but not in a tight loop: two nodes can point
                            // at each other for a moment around an election. A hint naming a node
                            // whose attempt is still out (a leader that hangs, which the others
                            // have not yet replaced) is retried elsewhere after a back-off.
                            hops += 1
                            if outstanding.contains(hint) {
                                if let other = nextIdle() { retryLater(other) }
                            } else if hops > 2 {
                                retryLater(hint)
                            } else {
                                launch(hint)
                            }
                            break
                        }
                    }
                    // Retry elsewhere after a back-off, even while another attempt is out: that one
                    // may hang (a stopped leader), and the node that just failed may have been
                    // campaigning, with no leader to name yet.
                    if clock.now < deadline, let other = nextIdle() { retryLater(other) }
                }
                if outstanding.isEmpty && !backingOff { break }
            }
            group.cancelAll()
            let last = attempts.isEmpty ? "no node answered" : attempts.joined(separator: "; ")
            throw Failure(
                description: "gave up after \(timeout ?? self.timeout) and \(attemptCount) attempts; the last: \(last)")
        }
    }

    private static func millis(_ d: Duration) -> Int64 {
        d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }
}
