@testable import Raft
import Testing

/// Log compaction and InstallSnapshot (Raft paper §7), with the snapshot sent in chunks.
@Suite struct SnapshotTests {
    @Test("§7 a follower behind the leader's snapshot receives it in chunks, installs it, and then matches the leader")
    func laggingFollowerInstallsChunkedSnapshot() throws {
        let (net, snapshot) = try leaderCompactedPastNode3()
        #expect(net.tick(until: { net.caughtUp(3, with: 1) }, maxTicks: 2 * net.electionTimeout) != nil)

        let chunks = net.delivered.filter { $0.to == 3 }.compactMap(\.snapshotChunk)
        #expect(chunks.map(\.offset) == Array(stride(from: 0, to: 50, by: 7)))  // 8 chunks of at most 7 bytes
        #expect(chunks.allSatisfy { $0.data.count <= 7 && $0.metadata == snapshot.metadata })
        #expect(chunks.map(\.done) == Array(repeating: false, count: 7) + [true])
        #expect(net.installedSnapshots[3] == [snapshot])
        #expect(net.storage[3]?.snapshot == snapshot)
        #expect(net[3].firstIndex == snapshot.metadata.index + 1)
        #expect(net.storage[3]?.entries == net.log(1))
        #expect(commands(net.applied[3] ?? []) == ["after"])
    }

    @Test("§7 a lost snapshot chunk is sent again")
    func lostChunkIsResent() throws {
        let (net, snapshot) = try leaderCompactedPastNode3()
        net.dropOnce { $0.snapshotChunk?.offset == 14 }
        #expect(net.tick(until: { net.caughtUp(3, with: 1) }, maxTicks: 3 * net.electionTimeout) != nil)

        #expect(net.dropped.compactMap(\.snapshotChunk).map(\.offset) == [14])
        let chunks = net.delivered.filter { $0.to == 3 }.compactMap(\.snapshotChunk)
        #expect(chunks.map(\.offset) == Array(stride(from: 0, to: 50, by: 7)))
        #expect(net.installedSnapshots[3] == [snapshot])
    }

    /// A 3-node cluster led by node 1 whose log is compacted past what node 3 has, with one entry
    /// after the snapshot; node 3 was isolated meanwhile and is now reachable again. The snapshot
    /// data is 50 bytes, sent in chunks of 7.
    private func leaderCompactedPastNode3() throws -> (TestNetwork, Snapshot) {
        let net = try TestNetwork(voters: 3) { $0.snapshotChunkSize = 7 }
        #expect(net.elect(1))
        net.isolate(3)
        for k in 0..<5 { try net.propose("x\(k)", on: 1) }
        net.deliver()
        let snapshot = try net.compact(1, through: net[1].appliedIndex, data: (0..<50).map(UInt8.init))
        #expect(snapshot.metadata.index == 6)
        try net.propose("after", on: 1)
        net.deliver()
        net.heal()
        return (net, snapshot)
    }
}

extension TestNetwork {
    /// Whether `id` holds the same log as `leader` and has applied all of it.
    func caughtUp(_ id: NodeID, with leader: NodeID) -> Bool {
        logsMatch([id, leader]) && self[id].appliedIndex == self[leader].commitIndex
    }
}
