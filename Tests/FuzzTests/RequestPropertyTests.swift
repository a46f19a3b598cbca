import ControlPlane
import FlotillaProto
import Foundation
import FuzzTargets
import GRPCCore
import Raft
import SwiftProtobuf
import Testing

/// Random values with the extremes over-represented: 0, 1, max − 1, max, the 32-bit edges,
/// and sizes just inside and far beyond every limit.
struct Extremes {
    var random: SplitMix64

    mutating func pick<T>(_ values: [T]) -> T { values[Int(random.next() % UInt64(values.count))] }
    mutating func chance(_ oneIn: UInt64) -> Bool { random.next() % oneIn == 0 }

    mutating func u64() -> UInt64 {
        pick([0, 1, 2, 3, 5, 99, UInt64(UInt32.max) - 1, UInt64(UInt32.max), UInt64(UInt32.max) + 1, UInt64(Int64.max), .max - 1, .max, random.next()])
    }
    mutating func u32() -> UInt32 { pick([0, 1, 2, 3, 64, 1024, 1025, 65_536, 65_537, 100_000, 100_001, .max - 1, .max, UInt32(truncatingIfNeeded: random.next())]) }
    static let texts: [String] = [
        "", "a", "matmul", "float32", "float64", "pending", "running", "j", "a1", "z", "\u{0}", "é✓",
        String(repeating: "k", count: 255), String(repeating: "k", count: 257), String(repeating: "x", count: 5000),
        String(repeating: "y", count: 300_000),
    ]
    static let blobs: [Data] = [
        Data(), Data(KeyValueStore.put(Array("k".utf8), Array("v".utf8))), Data(KeyValueStore.delete(Array("k".utf8))),
        Data([0x10, 0, 0]), Data([1, 0xFF, 0xFF, 0xFF, 0xFF]), Data((0..<64).map { UInt8(truncatingIfNeeded: $0 &* 37) }),
        Data(KeyValueStore.put([UInt8](repeating: 1, count: 5000), [1])), Data(count: 2 << 20),
    ]
    mutating func text() -> String { pick(Self.texts) }
    mutating func bytes() -> Data { pick(Self.blobs) }
    mutating func double() -> Double { pick([0, -1, 1e308, .nan, .infinity, -.infinity, 3.5]) }
}

/// A request for `method` with every field drawn from ``Extremes``.
func randomRequest(_ method: RequestMethod, _ x: inout Extremes) -> any SwiftProtobuf.Message {
    switch method {
    case .propose: return Flotilla_V1_ProposeRequest.with { $0.clientID = x.text(); $0.sequence = x.u64(); $0.command = x.bytes() }
    case .read: return Flotilla_V1_ReadRequest.with { $0.query = x.bytes() }
    case .status: return Flotilla_V1_StatusRequest()
    case .transferLeadership: return Flotilla_V1_TransferLeadershipRequest.with { $0.target = x.u64() }
    case .changeMembership:
        return Flotilla_V1_ChangeMembershipRequest.with { if x.chance(2) { $0.addVoter = x.u64() } else { $0.removeVoter = x.u64() } }
    case .submit:
        // A sound submission with each field made extreme one time in three (all at once would
        // almost never be accepted).
        return Flotilla_V1_SubmitRequest.with {
            $0.clientID = x.chance(3) ? x.text() : "c\(x.random.next() % 4)"
            $0.sequence = x.chance(3) ? x.u64() : x.random.next() % 50
            $0.key = x.chance(3) ? x.text() : ""
            $0.count = x.chance(3) ? x.u32() : UInt32(x.random.next() % 4)
            $0.spec = .with {
                $0.kind = x.chance(3) ? x.text() : "matmul"
                $0.size = x.chance(3) ? x.u32() : 8
                $0.precision = x.chance(3) ? x.text() : ""
                $0.seed = x.u64()
                $0.threads = x.chance(3) ? x.u32() : 1
                $0.zone = x.chance(3) ? x.text() : ""
                $0.job = x.chance(3) ? x.text() : ""
                $0.timeoutMs = x.chance(3) ? x.u64() : 0
                $0.maxAttempts = x.chance(3) ? x.u32() : 0
            }
        }
    case .getTask: return Flotilla_V1_GetTaskRequest.with { $0.id = x.u64() }
    case .listTasks: return Flotilla_V1_ListTasksRequest.with { $0.state = x.text(); $0.afterID = x.u64(); $0.limit = x.u32() }
    case .listAgents: return Flotilla_V1_ListAgentsRequest()
    case .act:
        return Flotilla_V1_ActionRequest.with {
            $0.clientID = x.text()
            $0.sequence = x.u64()
            switch x.random.next() % 4 {
            case 0: $0.cancel = x.u64()
            case 1: $0.retry = x.u64()
            case 2: $0.pauseJob = x.text()
            default: $0.resumeJob = x.text()
            }
        }
    case .awaitTasks:
        return Flotilla_V1_AwaitTasksRequest.with {
            $0.ids = (0..<(x.chance(8) ? 200_000 : Int(x.random.next() % 4))).map { _ in x.u64() }
            $0.timeoutMs = x.u64()
        }
    case .register:
        return Flotilla_V1_RegisterRequest.with {
            $0.agentID = x.text(); $0.zone = x.text(); $0.slots = x.u32(); $0.incarnation = x.u64(); $0.info = x.text()
        }
    case .heartbeat:
        return Flotilla_V1_AgentHeartbeatRequest.with {
            $0.agentID = x.text()
            $0.incarnation = x.u64()
            $0.running = (0..<(x.chance(8) ? 5000 : Int(x.random.next() % 3))).map { _ in .with { $0.taskID = x.u64(); $0.attempt = x.u32() } }
        }
    case .assignments: return Flotilla_V1_AssignmentsRequest.with { $0.agentID = x.text(); $0.incarnation = x.u64() }
    case .leave: return Flotilla_V1_LeaveRequest.with { $0.agentID = x.text(); $0.incarnation = x.u64() }
    case .report:
        return Flotilla_V1_ReportRequest.with {
            $0.agentID = x.text()
            $0.incarnation = x.u64()
            $0.taskID = x.u64()
            $0.attempt = x.u32()
            switch x.random.next() % 3 {
            case 0: $0.started = true
            case 1:
                $0.completed = .with {
                    $0.generationUs = x.u64(); $0.computeUs = x.u64(); $0.verificationUs = x.u64(); $0.gflops = x.double()
                    $0.verified = x.chance(2); $0.fingerprint = x.double(); $0.kernel = x.text(); $0.threads = x.u32()
                }
            default: $0.failed = x.text()
            }
        }
    }
}

/// Property: whatever a client sends, every node answers it with an answer or a deliberate
/// refusal, keeps running, and applies nothing malformed (`InProcessCluster.check`). Requests go to
/// the leader and to followers of a real 3-node cluster in one process.
@Suite(.timeLimit(.minutes(5)))
struct RequestPropertyTests {
    @Test func everyRequestWithExtremeFieldsIsAnsweredOrRefused() async throws {
        let cluster = InProcessCluster()
        try await cluster.start()
        var x = Extremes(random: SplitMix64(seed: 2026_12_06))
        var seen: [RequestMethod: Set<String>] = [:]
        for round in 0..<(RequestMethod.allCases.count * 25) {
            let method = RequestMethod.allCases[round % RequestMethod.allCases.count]
            let payload: [UInt8] = try randomRequest(method, &x).serializedBytes()
            let node = Int(x.random.next() % 3)
            do {
                let outcome = try await cluster.check(method, payload: payload, to: node)
                if case .refused(let code, _) = outcome { seen[method, default: []].insert("\(code)") } else { seen[method, default: []].insert("ok") }
            } catch {
                Issue.record("round \(round), \(method) to node \(node): \(error)")
            }
        }
        await cluster.shutdown()
        // The generator explores both sides: most methods were both answered and refused.
        let both = RequestMethod.allCases.filter { (seen[$0]?.count ?? 0) >= 2 }
        #expect(both.count >= 8, "answered and refused: \(both); all outcomes: \(seen)")
        for method in [RequestMethod.propose, .submit, .listTasks, .register] { #expect(seen[method]?.contains("ok") == true, "\(method): \(seen[method] ?? [])") }
    }
}

