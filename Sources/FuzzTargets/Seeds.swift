import ControlPlane
import FlotillaProto
import Foundation
import Manifest
import Raft
import RaftStorage
import RaftTransport
import SwiftProtobuf

extension FuzzTarget {
    /// Well-formed inputs to start from (`flotilla-fuzz seeds TARGET DIR` writes them; the
    /// committed corpora under `Fuzz/corpus/` began as these).
    public var seeds: [[UInt8]] {
        switch self {
        case .peerFrames:
            let batch = frame(type: 2, try! Flotilla_V1_RaftBatch(sampleMessages(from: 1, to: 2)).serializedBytes())
            return [
                helloFrame(sender: 1, cluster: "fuzz") + batch + frame(type: 3, []),
                helloFrame(sender: 3, cluster: "fuzz") + frame(type: 3, []),
                helloFrame(sender: 1, cluster: "other"),
                frame(type: 2, []),
            ]
        case .raftBatch:
            return sampleMessages(from: 1, to: 2).map { try! Flotilla_V1_RaftBatch([$0]).serializedBytes() }
                + [try! Flotilla_V1_RaftBatch(sampleMessages(from: 3, to: 1)).serializedBytes()]
        case .walSegment:
            return [sampleSegment(entries: 3), sampleSegment(entries: 20)]
        case .nodeSnapshot:
            let manifest = ManifestStore()
            var machine = FlotillaStateMachine(manifest: manifest)
            for (k, command) in primingCommands.enumerated() { _ = machine.apply(command.encoded, at: Index(k + 1)) }
            _ = machine.apply(KeyValueStore.put(Array("key".utf8), Array("value".utf8)), at: 100)
            return [encodeNodeSnapshot(machine), encodeNodeSnapshot(FlotillaStateMachine(manifest: ManifestStore()))]
        case .manifestCommand:
            return primingCommands.map(\.encoded) + [
                ManifestCommand.fail(task: 1, attempt: 1, agent: "a1", reason: "oom", at: 9).encoded,
                ManifestCommand.retry(task: 3, at: 9).encoded,
                ManifestCommand.agentDead(agent: "a2", reason: "silent", at: 9).encoded,
                ManifestReply.submitted(first: 1, count: 4, existing: false).encoded,
                ManifestReply.refused("no").encoded,
            ]
        case .clusterConfig:
            return [Array(sampleYAML.utf8)]
        case .requests:
            return sampleRequests.map { method, message in [method.rawValue, 0] + (try! message.serializedBytes() as [UInt8]) }
        }
    }
}

private func frame(type: UInt8, _ payload: [UInt8]) -> [UInt8] {
    let length = UInt32(1 + payload.count)
    return [UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type] + payload
}

private func helloFrame(sender: UInt64, cluster: String) -> [UInt8] {
    var payload = Array("FLTP".utf8) + [0, 1]  // magic, version 1 (big-endian)
    for shift in stride(from: 56, through: 0, by: -8) { payload.append(UInt8(sender >> UInt64(shift) & 0xFF)) }
    payload.append(UInt8(cluster.utf8.count))
    payload += Array(cluster.utf8)
    return frame(type: 1, payload)
}

private func sampleMessages(from: NodeID, to: NodeID) -> [Raft.Message] {
    let entries = [
        Entry(term: 2, index: 5, payload: .empty), Entry(term: 2, index: 6, payload: .command([1, 2, 3])),
        Entry(term: 2, index: 7, payload: .configuration(Configuration(voters: [1, 2, 3]))),
    ]
    let payloads: [Raft.Message.Payload] = [
        .voteRequest(VoteRequest(preVote: true, lastIndex: 4, lastTerm: 1, transfer: false)),
        .voteResponse(VoteResponse(preVote: false, granted: true)),
        .append(AppendRequest(prevIndex: 4, prevTerm: 1, entries: entries, commit: 4)),
        .appendResponse(AppendResponse(success: false, index: 4, hintIndex: 3, hintTerm: 1)),
        .heartbeat(Heartbeat(commit: 7, readRound: 2)),
        .heartbeatResponse(HeartbeatResponse(readRound: 2)),
        .snapshot(SnapshotChunk(
            metadata: SnapshotMetadata(index: 9, term: 2, configuration: Configuration(voters: [1, 2, 3])), totalSize: 6, offset: 0,
            data: [1, 2, 3], done: false)),
        .snapshotResponse(SnapshotResponse(snapshotIndex: 9, accepted: true, nextOffset: 3, done: false, matchIndex: 0)),
        .timeoutNow, .readIndex(requestID: 3), .readIndexResponse(requestID: 3, index: 7),
    ]
    return payloads.map { Raft.Message(from: from, to: to, term: 2, payload: $0) }
}

/// The first segment of a real log holding `entries` entries and a hard state.
private func sampleSegment(entries count: Int) -> [UInt8] {
    let dir = NSTemporaryDirectory() + "flotilla-seed-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: dir) }
    do {
        let storage = try FileLogStorage(directory: dir)
        var ready = Ready()
        ready.hardState = HardState(term: 2, vote: 1, commit: UInt64(count / 2))
        ready.entries = (1...count).map { Entry(term: 2, index: Index($0), payload: $0 == 1 ? .empty : .command(Array("entry \($0)".utf8))) }
        try storage.persist(ready)
    }
    catch { fatalError("cannot write a seed segment: \(error)") }
    return [UInt8]((try? Data(contentsOf: URL(fileURLWithPath: dir + "/wal/" + firstSegmentName))) ?? Data())
}

private let sampleYAML = ClusterConfig(
    clusterID: "fuzz",
    nodes: (1...3).map { ClusterConfig.Node(id: $0, host: "127.0.0.1", port: 7000 + Int($0), zone: "z\($0)", dataDirectory: "/tmp/n\($0)") }
).yaml

private let sampleRequests: [(RequestMethod, any SwiftProtobuf.Message)] = [
    (.propose, Flotilla_V1_ProposeRequest.with {
        $0.clientID = "c1"
        $0.sequence = 1
        $0.command = Data(KeyValueStore.put(Array("k".utf8), Array("v".utf8)))
    }),
    (.read, Flotilla_V1_ReadRequest.with { $0.query = Data(KeyValueStore.get(Array("k".utf8))) }),
    (.status, Flotilla_V1_StatusRequest()),
    (.transferLeadership, Flotilla_V1_TransferLeadershipRequest.with { $0.target = 2 }),
    (.changeMembership, Flotilla_V1_ChangeMembershipRequest.with { $0.removeVoter = 3 }),
    (.submit, Flotilla_V1_SubmitRequest.with {
        $0.clientID = "c2"
        $0.sequence = 1
        $0.key = "sweep"
        $0.count = 3
        $0.spec = .with {
            $0.kind = "matmul"
            $0.size = 64
            $0.precision = "float32"
            $0.seed = 7
            $0.timeoutMs = 60_000
        }
    }),
    (.getTask, Flotilla_V1_GetTaskRequest.with { $0.id = 1 }),
    (.listTasks, Flotilla_V1_ListTasksRequest.with {
        $0.state = "pending"
        $0.afterID = 0
        $0.limit = 10
    }),
    (.listAgents, Flotilla_V1_ListAgentsRequest()),
    (.act, Flotilla_V1_ActionRequest.with {
        $0.clientID = "c3"
        $0.sequence = 1
        $0.cancel = 2
    }),
    (.awaitTasks, Flotilla_V1_AwaitTasksRequest.with {
        $0.ids = [1, 2]
        $0.timeoutMs = 10
    }),
    (.register, Flotilla_V1_RegisterRequest.with {
        $0.agentID = "a1"
        $0.zone = "z"
        $0.slots = 2
        $0.incarnation = 1
    }),
    (.heartbeat, Flotilla_V1_AgentHeartbeatRequest.with {
        $0.agentID = "a1"
        $0.incarnation = 1
        $0.running = [.with { $0.taskID = 1; $0.attempt = 1 }]
    }),
    (.assignments, Flotilla_V1_AssignmentsRequest.with {
        $0.agentID = "a1"
        $0.incarnation = 1
    }),
    (.leave, Flotilla_V1_LeaveRequest.with {
        $0.agentID = "a1"
        $0.incarnation = 1
    }),
    (.report, Flotilla_V1_ReportRequest.with {
        $0.agentID = "a1"
        $0.incarnation = 1
        $0.taskID = 1
        $0.attempt = 1
        $0.failed = "out of memory"
    }),
]
