@testable import Raft
import Testing

/// The errors the core reports to its callers, and MemoryStorage.
@Suite struct ErrorTests {
    @Test("requests on a follower throw .notLeader naming the leader (noNode before one is known)")
    func followerRefusesWithLeaderID() throws {
        let net = try TestNetwork(voters: 3)
        #expect(throws: RaftError.notLeader(leader: noNode)) { try net.propose("x", on: 2) }
        #expect(throws: RaftError.notLeader(leader: noNode)) { try net.on(2) { try $0.readIndex(requestID: 1) } }
        #expect(net.elect(1))
        #expect(throws: RaftError.notLeader(leader: 1)) { try net.propose("x", on: 2) }
        #expect(throws: RaftError.notLeader(leader: 1)) { try net.on(2) { try $0.proposeConfigurationChange(.addVoter(4)) } }
        #expect(throws: RaftError.notLeader(leader: 1)) { try net.on(3) { try $0.transferLeadership(to: 2) } }
        #expect(throws: RaftError.invalidTransferTarget(1)) { try net.on(1) { try $0.transferLeadership(to: 1) } }
    }

    @Test("RaftConfig.validate() names the wrong field")
    func validateNamesTheField() {
        let cases: [(field: String, breakIt: (inout RaftConfig) -> Void)] = [
            ("id", { $0.id = noNode }),
            ("electionTimeout", { $0.electionTimeout = 1 }),
            ("heartbeatInterval", { $0.heartbeatInterval = 0 }),
            ("heartbeatInterval", { $0.heartbeatInterval = $0.electionTimeout }),
            ("maxEntriesPerAppend", { $0.maxEntriesPerAppend = 0 }),
            ("maxAppendBytes", { $0.maxAppendBytes = 0 }),
            ("maxInflightAppends", { $0.maxInflightAppends = 0 }),
            ("maxApplyBatch", { $0.maxApplyBatch = 0 }),
            ("snapshotChunkSize", { $0.snapshotChunkSize = 0 }),
            ("maxUncommittedEntries", { $0.maxUncommittedEntries = 0 }),
        ]
        #expect(invalidField(RaftConfig(id: 1)) == nil)
        for (field, breakIt) in cases {
            var config = RaftConfig(id: 1)
            breakIt(&config)
            #expect(invalidField(config) == field)
        }
    }

    private func invalidField(_ config: RaftConfig) -> String? {
        do {
            try config.validate()
            return nil
        } catch {
            guard case .invalidConfig(let field, _) = error else { return "unexpected \(error)" }
            return field
        }
    }

    @Test(
        "RaftNode.init refuses inconsistent persisted state with .corruptState",
        arguments: [
            PersistentState(hardState: HardState(term: 1), entries: [paperLog([1])[0], paperLog([1, 1, 1])[2]]),  // a gap
            PersistentState(hardState: HardState(term: 2), entries: paperLog([2, 1])),  // terms going down
            PersistentState(hardState: HardState(term: 1, commit: 3), entries: paperLog([1, 1])),  // commit beyond the log
            PersistentState(hardState: HardState(term: 1), entries: paperLog([1, 2])),  // term below the last entry's
        ])
    func initRefusesCorruptState(state: PersistentState) {
        let error = #expect(throws: RaftError.self) {
            try RaftNode(config: RaftConfig(id: 1), state: state, bootstrap: Configuration(voters: [1]), random: SplitMix64(seed: 1))
        }
        guard case .corruptState? = error else {
            Issue.record("expected .corruptState, got \(String(describing: error))")
            return
        }
    }
}

@Suite struct MemoryStorageTests {
    @Test("MemoryStorage: persist, overwrite a suffix, compact, install a snapshot, and load it all back")
    func persistTruncateCompactRoundTrip() throws {
        var storage = MemoryStorage()
        storage.persist(ready(entries: paperLog([1, 1, 1, 1, 1]), hardState: HardState(term: 1, vote: 2, commit: 3)))
        #expect(storage.load() == PersistentState(hardState: HardState(term: 1, vote: 2, commit: 3), entries: paperLog([1, 1, 1, 1, 1])))

        // A new leader overwrote the log from index 4: entries 4 and 5 are replaced by one entry.
        storage.persist(ready(entries: [Entry(term: 2, index: 4, payload: .empty)], hardState: HardState(term: 2, commit: 3)))
        let overwritten = paperLog([1, 1, 1]) + [Entry(term: 2, index: 4, payload: .empty)]
        #expect(storage.entries == overwritten && storage.hardState.term == 2)

        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 2, term: 1, configuration: Configuration(voters: [1, 2, 3])), data: [9])
        storage.compact(snapshot)
        #expect(storage.snapshot == snapshot && storage.entries == Array(overwritten[2...]) && storage.lastIndex == 4)
        storage.compact(Snapshot(metadata: SnapshotMetadata(index: 1, term: 1, configuration: .empty), data: []))
        #expect(storage.snapshot == snapshot)  // an older snapshot is ignored

        let node = try RaftNode(config: RaftConfig(id: 1), state: storage.load(), random: SplitMix64(seed: 1))
        #expect(node.firstIndex == 3 && node.lastIndex == 4 && node.term == 2 && node.commitIndex == 3)
        #expect(node.configuration == Configuration(voters: [1, 2, 3]))

        // A snapshot from the leader replaces the whole log; entries that follow it are kept.
        let received = Snapshot(metadata: SnapshotMetadata(index: 10, term: 3, configuration: Configuration(voters: [1, 2])), data: [7, 7])
        var install = ready(entries: [Entry(term: 3, index: 11, payload: .empty)], hardState: HardState(term: 3, commit: 10))
        install.snapshot = received
        storage.persist(install)
        #expect(storage.snapshot == received && storage.hardState == HardState(term: 3, commit: 10))
        #expect(storage.entries == [Entry(term: 3, index: 11, payload: .empty)])

        // Entries starting at or below the snapshot: only those after it are stored.
        let straddling = (10...12).map { Entry(term: 4, index: $0, payload: .empty) }
        storage.persist(ready(entries: straddling, hardState: HardState(term: 4, commit: 10)))
        #expect(storage.entries == Array(straddling.dropFirst()) && storage.lastIndex == 12)
    }

    private func ready(entries: [Entry], hardState: HardState) -> Ready {
        var rd = Ready()
        rd.entries = entries
        rd.hardState = hardState
        return rd
    }
}
