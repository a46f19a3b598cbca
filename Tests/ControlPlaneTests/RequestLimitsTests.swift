import ControlPlane
import Foundation
import Raft
import Testing

/// Membership changes must leave a quorum of voters that are up (etcd's strict reconfiguration
/// check). Each case names what the cluster would have become without the check.
@Suite struct MembershipCheckTests {
    let three = Configuration(voters: [1, 2, 3])

    @Test func aHealthyClusterMayGrowOrShrink() {
        #expect(membershipChangeProblem(.addVoter(4), voters: three, up: [1, 2, 3]) == nil)
        #expect(membershipChangeProblem(.removeVoter(3), voters: three, up: [1, 2, 3]) == nil)
    }

    /// 3 voters with one down, then a 4th added: 2 of 4 up, no quorum (3) — one write away from a
    /// cluster that commits nothing until node 3 or the newcomer comes up.
    @Test func addingAVoterWhileOneIsDownIsRefused() throws {
        let problem = try #require(membershipChangeProblem(.addVoter(4), voters: three, up: [1, 2]))
        #expect(problem.contains("need 3 up"))
        #expect(problem.contains("bring node 3 back first"))
    }

    /// Removing a live voter while another is down leaves {1, 3} with only node 1 up.
    @Test func removingALiveVoterWhileAnotherIsDownIsRefused() {
        #expect(membershipChangeProblem(.removeVoter(2), voters: three, up: [1, 2]) != nil)
        // Removing the one that is down is how an operator repairs the cluster: allowed.
        #expect(membershipChangeProblem(.removeVoter(3), voters: three, up: [1, 2]) == nil)
    }

    /// A change that changes nothing is left to the core, which says why ("already a voter").
    @Test func noOpChangesAreLeftToTheCore() {
        #expect(membershipChangeProblem(.addVoter(2), voters: three, up: [1]) == nil)
        #expect(membershipChangeProblem(.removeVoter(9), voters: three, up: [1]) == nil)
    }
}

/// docs/operations.md lists every request limit; this keeps the table true.
@Suite struct RequestLimitsTests {
    @Test func theOperationsGuideListsEveryLimit() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/operations.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for row in RequestLimits.table {
            #expect(text.contains("| \(row.field) | \(row.limit) |"), "docs/operations.md lacks the row '| \(row.field) | \(row.limit) |'")
        }
    }
}
