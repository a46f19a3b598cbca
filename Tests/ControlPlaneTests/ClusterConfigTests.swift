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
            address: 127.0.0.1:7003
            peer_port: 7010
            zone: gcp-europe-west1
            data_dir: /tmp/d2
        """

    /// Found by the cluster-config fuzz target: a YAML complex key made Yams force-unwrap nil and
    /// crashed `flotilla node` instead of naming the problem.
    @Test(arguments: ["? [a, b]: 1\n", "nodes:\n  - ? {id: 1}: x\n", "cluster_id: c\n? - x\n: y\n"])
    func aComplexKeyIsAnErrorNotACrash(yaml: String) {
        #expect(throws: ConfigError.self) { _ = try ClusterConfig.parse(yaml: yaml) }
        do {
            _ = try ClusterConfig.parse(yaml: yaml)
        } catch {
            #expect(error.description.contains("not a plain name"), "\(error)")
        }
    }

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

    @Test func peerPortsClusterIDAndPeerTransport() throws {
        let c = try ClusterConfig.parse(yaml: valid)
        #expect(c.node(1)?.peerPort == 7002)  // the default: the address's port + 1
        #expect(c.node(2)?.peerPort == 7010)
        #expect(c.node(2)?.peerAddress == "127.0.0.1:7010")
        #expect(c.clusterID == "flotilla")
        #expect(c.peerTransport == .nio)

        let grpc = try ClusterConfig.parse(yaml: "cluster_id: prod-eu.2\npeer_transport: grpc\n" + valid)
        #expect(grpc.clusterID == "prod-eu.2")
        #expect(grpc.peerTransport == .grpc)
        #expect(try ClusterConfig.parse(yaml: grpc.yaml) == grpc)
        #expect(try ClusterConfig.parse(yaml: "cluster_id: 2024\n" + valid).clusterID == "2024")

        // Nodes on different hosts may use the same ports.
        let spread = try ClusterConfig.parse(yaml: """
            nodes:
              - id: 1
                address: 10.0.0.1:7000
                zone: z
                data_dir: d
              - id: 2
                address: 10.0.0.2:7000
                zone: z
                data_dir: d
            """)
        #expect(spread.nodes.map(\.peerPort) == [7001, 7001])
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
            ("cluster_id: has space\nnodes:\n  - id: 1\n    address: a:1\n    zone: z\n    data_dir: d", "cluster_id"),
            ("cluster_id: ''\nnodes:\n  - id: 1\n    address: a:1\n    zone: z\n    data_dir: d", "cluster_id"),
            ("peer_transport: udp\nnodes:\n  - id: 1\n    address: a:1\n    zone: z\n    data_dir: d", "peer_transport"),
            ("nodes:\n  - id: 1\n    address: a:1\n    peer_port: 0\n    zone: z\n    data_dir: d", "nodes[0].peer_port"),
            ("nodes:\n  - id: 1\n    address: a:1\n    peer_port: 70000\n    zone: z\n    data_dir: d", "nodes[0].peer_port"),
            ("nodes:\n  - id: 1\n    address: a:1\n    peer_port: x\n    zone: z\n    data_dir: d", "nodes[0].peer_port"),
            // The node's own address port.
            ("nodes:\n  - id: 1\n    address: a:1\n    peer_port: 1\n    zone: z\n    data_dir: d", "nodes[0].peer_port"),
            // No room for the default.
            ("nodes:\n  - id: 1\n    address: a:65535\n    zone: z\n    data_dir: d", "nodes[0].peer_port"),
            // Node 2's address is node 1's default peer port.
            ("nodes:\n  - id: 1\n    address: a:1\n    zone: z\n    data_dir: d\n  - id: 2\n    address: a:2\n    zone: z\n    data_dir: e", "nodes[1].address"),
            // Node 3's peer port is node 1's address port.
            ("nodes:\n  - id: 1\n    address: a:3\n    zone: z\n    data_dir: d\n  - id: 2\n    address: a:2\n    peer_port: 9\n    zone: z\n    data_dir: e\n  - id: 3\n    address: a:12\n    peer_port: 3\n    zone: z\n    data_dir: f", "nodes[2].peer_port"),
            // Two nodes' peer ports.
            ("nodes:\n  - id: 1\n    address: a:1\n    peer_port: 9\n    zone: z\n    data_dir: d\n  - id: 2\n    address: a:5\n    peer_port: 9\n    zone: z\n    data_dir: e", "nodes[1].peer_port"),
            // Node 2's default peer port (3) is node 1's address port.
            ("nodes:\n  - id: 1\n    address: a:3\n    zone: z\n    data_dir: d\n  - id: 2\n    address: a:2\n    zone: z\n    data_dir: e", "nodes[1].peer_port"),
        ])
    func namesTheWrongField(yaml: String, field: String) {
        #expect {
            _ = try ClusterConfig.parse(yaml: yaml, source: "c.yaml")
        } throws: { error in
            guard let e = error as? ConfigError else { return false }
            return e.field == field && e.description.hasPrefix("c.yaml: \(field) ")
        }
    }

    @Test func aPeerPortCollisionIsExplained() {
        let yaml = "nodes:\n  - id: 1\n    address: 10.0.0.1:7001\n    zone: z\n    data_dir: d\n  - id: 2\n    address: 10.0.0.1:7002\n    zone: z\n    data_dir: e"
        #expect {
            _ = try ClusterConfig.parse(yaml: yaml, source: "c.yaml")
        } throws: { error in
            (error as? ConfigError)?.description
                == "c.yaml: nodes[1].address 10.0.0.1:7002 is node 1's peer port (peer_port defaults to the address's port + 1: leave a gap, or set peer_port)"
        }
    }

    @Test func invalidYAMLIsReported() {
        #expect(throws: ConfigError.self) { _ = try ClusterConfig.parse(yaml: "nodes: [", source: "c.yaml") }
    }
}
