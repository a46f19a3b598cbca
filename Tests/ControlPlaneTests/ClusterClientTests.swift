import ControlPlane
import FlotillaProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Synchronization
import Testing

/// `ClusterClient`'s retries, hints and hedged attempts against stub nodes on 127.0.0.1: each
/// stub answers every proposal the same way (or never). Asserts which calls succeed within their
/// budget and what the error says, never how long anything took. (`make test` runs this suite
/// with the process suites, away from the CPU-bound ones that would starve its calls.)
@Suite(.timeLimit(.minutes(1)))
struct ClusterClientTests {
    /// How a stub node answers `Propose`.
    enum Answer: Sendable {
        case ok
        /// UNAVAILABLE with no hint: a follower campaigning, with no leader to name.
        case noLeader
        /// FAILED_PRECONDITION naming the node at this address as the leader.
        case hint(String)
        case invalid
        /// Accepts the call and never answers (a stopped node).
        case hang
    }

    struct StubNode: Flotilla_V1_ControlPlane.SimpleServiceProtocol {
        let answer: @Sendable () -> Answer

        func propose(request: Flotilla_V1_ProposeRequest, context: ServerContext) async throws -> Flotilla_V1_ProposeResponse {
            switch answer() {
            case .ok: return .with { $0.index = 7 }
            case .noLeader: throw RPCError(code: .unavailable, message: "no leader is known yet: retry shortly")
            case .hint(let address):
                var metadata = Metadata()
                metadata.addString(address, forKey: "leader-address")
                throw RPCError(code: .failedPrecondition, message: "not the leader", metadata: metadata)
            case .invalid: throw RPCError(code: .invalidArgument, message: "command: malformed")
            case .hang:
                try await Task.sleep(for: .seconds(60))
                throw RPCError(code: .unavailable, message: "woke up")
            }
        }
        func read(request: Flotilla_V1_ReadRequest, context: ServerContext) async throws -> Flotilla_V1_ReadResponse {
            throw RPCError(code: .unimplemented, message: "stub")
        }
        func status(request: Flotilla_V1_StatusRequest, context: ServerContext) async throws -> Flotilla_V1_NodeStatus {
            throw RPCError(code: .unimplemented, message: "stub")
        }
        func transferLeadership(
            request: Flotilla_V1_TransferLeadershipRequest, context: ServerContext
        ) async throws -> Flotilla_V1_TransferLeadershipResponse {
            throw RPCError(code: .unimplemented, message: "stub")
        }
        func changeMembership(
            request: Flotilla_V1_ChangeMembershipRequest, context: ServerContext
        ) async throws -> Flotilla_V1_ChangeMembershipResponse {
            throw RPCError(code: .unimplemented, message: "stub")
        }
    }

    /// Runs stub nodes answering as `answers` say (an answer may name another stub: it gets the
    /// stubs' addresses), then `body` with their addresses in that order.
    static func withStubs(
        _ answers: [@Sendable (_ addresses: [String]) -> Answer], _ body: @Sendable ([String]) async throws -> Void
    ) async throws {
        let known = Mutex<[String]>([])
        let servers = answers.map { answer in
            GRPCServer(
                transport: HTTP2ServerTransport.Posix(address: .ipv4(host: "127.0.0.1", port: 0), transportSecurity: .plaintext),
                services: [StubNode(answer: { answer(known.withLock { $0 }) })])
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for server in servers { group.addTask { try await server.serve() } }
            defer { for s in servers { s.beginGracefulShutdown() } }
            var addresses: [String] = []
            for server in servers {
                guard let address = try await server.listeningAddress?.ipv4 else { throw ClusterClient.Failure(description: "a stub did not start") }
                addresses.append("127.0.0.1:\(address.port)")
            }
            known.withLock { $0 = addresses }
            try await body(addresses)
            group.cancelAll()
        }
    }

    static func propose(_ addresses: [String], timeout: Duration = .seconds(4), hedgeAfter: Duration? = .milliseconds(100)) async -> Result<UInt64, any Error> {
        do {
            let r = try await ClusterClient.withCluster(addresses, timeout: timeout, hedgeAfter: hedgeAfter) { client in
                try await client.propose([1, 2, 3])
            }
            return .success(r.index)
        } catch {
            return .failure(error)
        }
    }

    /// The first node hangs and the second has no leader to name (it is campaigning): the call
    /// still reaches the third within a budget shorter than the hung call's own 5 s timeout.
    @Test func aHungNodeAndACampaigningOneDoNotStopTheCall() async throws {
        try await Self.withStubs([{ _ in .hang }, { _ in .noLeader }, { _ in .ok }]) { addresses in
            let hedged = await Self.propose(addresses)
            #expect((try? hedged.get()) == 7, "\(hedged)")
            // Without hedging the call sits on the hung node past its budget.
            let unhedged = await Self.propose(addresses, hedgeAfter: nil)
            #expect((try? unhedged.get()) == nil)
        }
    }

    /// The others still name the hung node as the leader (they have not noticed yet): the client
    /// does not pile more calls onto it, and goes on trying the rest.
    @Test func aHintNamingTheHungNodeIsNotFollowedBackToIt() async throws {
        try await Self.withStubs([{ _ in .hang }, { a in .hint(a[0]) }, { _ in .ok }]) { addresses in
            let result = await Self.propose(addresses)
            #expect((try? result.get()) == 7, "\(result)")
        }
    }

    @Test func aHintIsFollowed() async throws {
        try await Self.withStubs([{ a in .hint(a[2]) }, { _ in .noLeader }, { _ in .ok }]) { addresses in
            let result = await Self.propose(addresses, hedgeAfter: nil)
            #expect((try? result.get()) == 7, "\(result)")
        }
    }

    /// Bad input is not retried, and the error names the node and its reason. (Unhedged: a hedged
    /// call may meet a faster node first, and every node of a real cluster refuses the same input.)
    @Test func badInputFailsAtOnce() async throws {
        try await Self.withStubs([{ _ in .invalid }, { _ in .ok }]) { addresses in
            let result = await Self.propose(addresses, hedgeAfter: nil)
            guard case .failure(let error) = result else {
                Issue.record("a malformed command was retried until a node took it")
                return
            }
            #expect("\(error)".contains("\(addresses[0]): command: malformed"))
        }
    }

    /// When no node can take the call, the error lists the last attempts: node, answer, time.
    @Test func givingUpListsTheLastAttempts() async throws {
        try await Self.withStubs([{ _ in .noLeader }, { _ in .noLeader }]) { addresses in
            let result = await Self.propose(addresses, timeout: .seconds(2))
            guard case .failure(let error) = result else {
                Issue.record("no node could take it, yet it succeeded")
                return
            }
            let text = "\(error)"
            #expect(text.contains("gave up after 2.0 seconds"), "\(text)")
            #expect(text.contains("\(addresses[0]) no leader is known yet: retry shortly ("), "\(text)")
            #expect(text.contains("\(addresses[1]) no leader is known yet"), "\(text)")
        }
    }
}
