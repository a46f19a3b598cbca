import ControlPlane
import Raft
import Testing

@Suite struct ClusterConfigTests {
    private let valid = """
        profile: lan
        nodes:
          - id: 1
            address: 127.0.0.1:7001
            zone: aws-us-east-1
            data_dir: /tmp/d1
          - id: 2
            address: 127.0.0.1:7002
            zone: gcp-europe-west1
            data_dir: /tmp/d2
        """

    @Test func parsesAndRoundTrips() throws {
        let c = try ClusterConfig.parse(yaml: valid)
        #expect(c.nodes.map(\.id) == [1, 2])
        #expect(c.node(2)?.zone == "gcp-europe-west1")
        #expect(c.node(1)?.port == 7001)
        #expect(c.timing == .lan)
        #expect(c.voters == Configuration(voters: [1, 2]))
        #expect(try ClusterConfig.parse(yaml: c.yaml) == c)
        let options = c.nodeOptions(for: 2)
        #expect(options.raft.id == 2)
        #expect(options.tickInterval == .milliseconds(10))
    }

    @Test func wanProfileAndOverrides() throws {
        let c = try ClusterConfig.parse(yaml: "profile: wan\ntiming:\n  tick: 20ms\n  election_ticks: 25\n" + valid.split(separator: "\n").dropFirst().joined(separator: "\n"))
        #expect(c.profile == .wan)
        #expect(c.timing.tick == .milliseconds(20))
        #expect(c.timing.electionTicks == 25)
        #expect(c.timing.heartbeatTicks == ClusterConfig.Timing.wan.heartbeatTicks)
    }

    @Test(
        "a wrong field is named in the error",
        arguments: [
            ("profile: moon\nnodes: []", "profile"),
            ("nodes: []", "nodes"),
            ("nodes:\n  - id: 0\n    address: a:1\n    zone: z\n    data_dir: d", "nodes[0].id"),
            ("nodes:\n  - id: 1\n    address: nohost\n    zone: z\n    data_dir: d", "nodes[0].address"),
            ("nodes:\n  - id: 1\n    address: a:99999\n    zone: z\n    data_dir: d", "nodes[0].address"),
            ("nodes:\n  - id: 1\n    address: a:1\n    data_dir: d", "nodes[0].zone"),
            ("nodes:\n  - id: 1\n    address: a:1\n    zone: z", "nodes[0].data_dir"),
            ("nodes:\n  - id: 1\n    address: a:1\n    zone: z\n    data_dir: d\n  - id: 1\n    address: a:2\n    zone: z\n    data_dir: e", "nodes[1].id"),
            ("nodes:\n  - id: 1\n    address: a:1\n    zone: z\n    data_dir: d\n  - id: 2\n    address: a:1\n    zone: z\n    data_dir: e", "nodes[1].address"),
            ("nodes:\n  - id: 1\n    address: a:1\n    zone: z\n    data_dir: d\n    colour: red", "nodes[0].colour"),
            ("timing:\n  tick: fast\nnodes:\n  - id: 1\n    address: a:1\n    zone: z\n    data_dir: d", "timing.tick"),
            ("timing:\n  heartbeat_ticks: 12\nnodes:\n  - id: 1\n    address: a:1\n    zone: z\n    data_dir: d", "timing.heartbeat_ticks"),
        ])
    func namesTheWrongField(yaml: String, field: String) {
        #expect {
            _ = try ClusterConfig.parse(yaml: yaml, source: "c.yaml")
        } throws: { error in
            guard let e = error as? ConfigError else { return false }
            return e.field == field && e.description.hasPrefix("c.yaml: \(field) ")
        }
    }

    @Test func invalidYAMLIsReported() {
        #expect(throws: ConfigError.self) { _ = try ClusterConfig.parse(yaml: "nodes: [", source: "c.yaml") }
    }
}
