import ControlPlane
import FlotillaProto
import Foundation
import FuzzTargets
import GRPCCore
import GRPCNIOTransportHTTP2
import Raft
import SwiftProtobuf
import Testing

/// The findings of issue #7, each as the request a user sent, against the real services of a
/// 3-node cluster in one process. Each failed on the code before the fix (the node crashed, or the
/// request was accepted).
@Suite(.serialized, .timeLimit(.minutes(3)))
struct RequestRegressionTests {
    static func withCluster(_ body: (InProcessCluster, Int) async throws -> Void) async throws {
        let cluster = InProcessCluster()
        try await cluster.start()
        do {
            try await body(cluster, try await cluster.leader())
        } catch {
            await cluster.shutdown()
            throw error
        }
        await cluster.shutdown()
    }

    static func send(_ cluster: InProcessCluster, _ method: RequestMethod, _ request: some SwiftProtobuf.Message, to node: Int) async throws
        -> RequestOutcome
    {
        // Long polls get a real budget here: the answer, not a deadline, is what is checked.
        try await cluster.check(method, payload: try request.serializedBytes(), to: node, shortTimeout: .seconds(20))
    }

    /// Sends to whichever node leads now, again if leadership moved meanwhile (on a loaded machine
    /// the in-process cluster may elect anew): for the requests that must be accepted.
    static func sendToLeader(_ cluster: InProcessCluster, _ method: RequestMethod, _ request: some SwiftProtobuf.Message) async throws
        -> RequestOutcome
    {
        var outcome = RequestOutcome.undecodable
        for _ in 0..<20 {
            outcome = try await send(cluster, method, request, to: try await cluster.leader())
            guard case .refused(let code, _) = outcome, [.failedPrecondition, .unavailable].contains(code) else { return outcome }
        }
        return outcome
    }

    static func expectRefused(_ outcome: RequestOutcome, _ code: RPCError.Code, mentioning words: String...) {
        guard case .refused(let got, let message) = outcome else {
            Issue.record("expected \(code), got \(outcome)")
            return
        }
        #expect(got == code, "\(message)")
        for w in words { #expect(message.contains(w), "'\(message)' does not mention '\(w)'") }
    }

    /// `ListTasks` with `after_id = 2^64 − 1` trapped in `TaskManifest.list` and stopped the node
    /// (each node in turn: the whole cluster). Now it answers with no tasks, on every node.
    @Test func listingAfterTheLastPossibleIDAnswersOnEveryNode() async throws {
        try await Self.withCluster { cluster, leader in
            let submit = Flotilla_V1_SubmitRequest.with { $0.spec = .with { $0.size = 8 }; $0.count = 2 }
            #expect(try await Self.sendToLeader(cluster, .submit, submit) == .answered)
            for node in 0..<3 {
                let outcome = try await Self.send(cluster, .listTasks, Flotilla_V1_ListTasksRequest.with { $0.afterID = .max }, to: node)
                #expect(outcome == .answered)
            }
            #expect(await cluster.allNodesAnswer())
        }
    }

    /// `ChangeMembership add_voter = 99` (no such node) was accepted, leaving 4 voters of which
    /// one can never vote; `add_voter = 0` answered OK.
    @Test func addingAVoterNeedsARealNode() async throws {
        try await Self.withCluster { cluster, leader in
            let add99 = try await Self.send(cluster, .changeMembership, Flotilla_V1_ChangeMembershipRequest.with { $0.addVoter = 99 }, to: leader)
            Self.expectRefused(add99, .invalidArgument, mentioning: "node 99", "cluster.yaml")
            let add0 = try await Self.send(cluster, .changeMembership, Flotilla_V1_ChangeMembershipRequest.with { $0.addVoter = 0 }, to: leader)
            Self.expectRefused(add0, .invalidArgument, mentioning: "add_voter")
            let remove0 = try await Self.send(cluster, .changeMembership, Flotilla_V1_ChangeMembershipRequest.with { $0.removeVoter = 0 }, to: leader)
            Self.expectRefused(remove0, .invalidArgument, mentioning: "remove_voter")
        }
    }

    /// Random bytes sent to `Propose` were appended, replicated and fsynced on every node before
    /// the state machine called them malformed. Now they are refused before anything is appended
    /// (`check` also fails if any node ever applied a malformed command).
    @Test(arguments: [4096, 3_500_000])
    func garbageProposalsNeverReachTheLog(size: Int) async throws {
        try await Self.withCluster { cluster, leader in
            var random = SplitMix64(seed: UInt64(size))
            let garbage = Data((0..<size).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            let propose = Flotilla_V1_ProposeRequest.with {
                $0.clientID = "c"
                $0.sequence = 1
                $0.command = garbage
            }
            Self.expectRefused(try await Self.send(cluster, .propose, propose, to: leader), .invalidArgument, mentioning: "command")
            // A manifest command through the raw API is refused too: it must come through Tasks/Agents.
            var manifestLike = propose
            manifestLike.command = Data([0x10] + Array(garbage.prefix(100)))
            Self.expectRefused(try await Self.send(cluster, .propose, manifestLike, to: leader), .invalidArgument, mentioning: "key-value")
            // A well-formed key-value command still commits.
            var good = propose
            good.command = Data(KeyValueStore.put(Array("k".utf8), Array("v".utf8)))
            #expect(try await Self.sendToLeader(cluster, .propose, good) == .answered)
            #expect(cluster.malformedCommandsApplied.isEmpty)
        }
    }

    /// `Submit` accepted a 3 MiB `client_id` (kept in the replicated session table and every
    /// snapshot) and `timeout_ms = 2^64 − 1`.
    @Test func submissionFieldsAreBounded() async throws {
        try await Self.withCluster { cluster, leader in
            let base = Flotilla_V1_SubmitRequest.with { $0.spec = .with { $0.size = 8 } }
            var hugeClient = base
            hugeClient.clientID = String(repeating: "c", count: 3 << 20)
            hugeClient.sequence = 1
            Self.expectRefused(try await Self.send(cluster, .submit, hugeClient, to: leader), .invalidArgument, mentioning: "client_id", "256")
            var forever = base
            forever.spec.timeoutMs = .max
            Self.expectRefused(try await Self.send(cluster, .submit, forever, to: leader), .invalidArgument, mentioning: "spec.timeout_ms")
            var hugeKey = base
            hugeKey.key = String(repeating: "k", count: 1 << 20)
            Self.expectRefused(try await Self.send(cluster, .submit, hugeKey, to: leader), .invalidArgument, mentioning: "key", "256")
            #expect(try await Self.sendToLeader(cluster, .submit, base) == .answered)
        }
    }

    /// `AwaitTasks` for an id that does not exist answered `complete: true` with no tasks.
    @Test func awaitingAnUnknownTaskIsNotFound() async throws {
        try await Self.withCluster { cluster, leader in
            let outcome = try await Self.send(cluster, .awaitTasks, Flotilla_V1_AwaitTasksRequest.with { $0.ids = [12345, 777] }, to: leader)
            Self.expectRefused(outcome, .notFound, mentioning: "no task 777", "1 more")
        }
    }
}

/// A request larger than the server's limit was answered with a bare stream reset (clients saw an
/// internal or unavailable error, and retried). Over HTTP/2 on 127.0.0.1, as clients meet it.
@Suite(.timeLimit(.minutes(1)))
struct OversizedRequestTests {
    struct Echo: Flotilla_V1_ControlPlane.SimpleServiceProtocol {
        func propose(request: Flotilla_V1_ProposeRequest, context: ServerContext) async throws -> Flotilla_V1_ProposeResponse {
            .with { $0.index = UInt64(request.command.count) }
        }
        func read(request: Flotilla_V1_ReadRequest, context: ServerContext) async throws -> Flotilla_V1_ReadResponse { .init() }
        func status(request: Flotilla_V1_StatusRequest, context: ServerContext) async throws -> Flotilla_V1_NodeStatus { .init() }
        func transferLeadership(
            request: Flotilla_V1_TransferLeadershipRequest, context: ServerContext
        ) async throws -> Flotilla_V1_TransferLeadershipResponse { .init() }
        func changeMembership(
            request: Flotilla_V1_ChangeMembershipRequest, context: ServerContext
        ) async throws -> Flotilla_V1_ChangeMembershipResponse { .init() }
    }

    @Test func anOversizedRequestIsResourceExhaustedNamingTheLimit() async throws {
        let server = GRPCServer(transport: makeServerTransport(host: "127.0.0.1", port: 0), services: [Echo()])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.serve() }
            defer { server.beginGracefulShutdown() }
            guard let port = try await server.listeningAddress?.ipv4?.port else { throw RPCError(code: .internalError, message: "no port") }
            var config = HTTP2ClientTransport.Posix.Config.defaults
            config.backoff = .init(initial: .milliseconds(20), max: .milliseconds(100), multiplier: 1.6, jitter: 0)
            try await withGRPCClient(
                transport: try HTTP2ClientTransport.Posix(target: .ipv4(address: "127.0.0.1", port: port), transportSecurity: .plaintext, config: config)
            ) { client in
                let cp = Flotilla_V1_ControlPlane.Client(wrapping: client)
                var options = CallOptions.defaults
                options.timeout = .seconds(20)
                options.maxRequestMessageBytes = 80 << 20
                // Within the limit: served.
                let small = try await cp.propose(.with { $0.command = Data(count: 1 << 20) }, options: options)
                #expect(small.index == 1 << 20)
                // Over it: a status that names the limit, however far over.
                for size in [RequestLimits.messageBytes + 1, 64 << 20] {
                    let error = await #expect(throws: RPCError.self) {
                        _ = try await cp.propose(.with { $0.command = Data(count: size) }, options: options)
                    }
                    #expect(error?.code == .resourceExhausted, "\(String(describing: error))")
                    #expect(error?.message.contains("limit of \(RequestLimits.messageBytes) bytes") == true, "\(String(describing: error))")
                }
                // The connection and the server are still fine.
                #expect(try await cp.propose(.with { $0.command = Data([1]) }, options: options).index == 1)
            }
            group.cancelAll()
        }
    }
}
