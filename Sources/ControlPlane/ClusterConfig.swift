public import Manifest
public import Raft
import Yams

/// A cluster's configuration file (`cluster.yaml`): every node's id, addresses, zone and data
/// directory, the peer transport and the timing parameters. Every node of the cluster reads the
/// same file.
///
/// ```yaml
/// cluster_id: prod-eu     # optional (default "flotilla"): peers refuse connections from other clusters
/// peer_transport: nio     # nio (default): frames on the peer port; grpc: RaftPeer streams on the client port
/// profile: lan            # lan (default) or wan: timing defaults for a LAN or a cross-cloud WAN
/// timing:                 # optional; each field overrides the profile
///   tick: 10ms
///   election_ticks: 10
///   heartbeat_ticks: 1
///   request_timeout: 5s
///   snapshot_interval: 10000
/// nodes:
///   - id: 1
///     address: 10.0.0.1:7001   # clients, agents (and peers with peer_transport: grpc)
///     peer_port: 7002          # optional (default: the address's port + 1): peers, same host
///     zone: aws-us-east-1
///     data_dir: /var/lib/flotilla/n1
/// ```
public struct ClusterConfig: Sendable, Hashable {
    public struct Node: Sendable, Hashable {
        public var id: NodeID
        public var host: String
        /// The gRPC port: clients, agents, and peers when the peer transport is `grpc`.
        public var port: Int
        /// The port of the node's peer listener (`peer_transport: nio`), on the same host.
        public var peerPort: Int
        public var zone: String
        public var dataDirectory: String
        public var address: String { "\(host):\(port)" }
        public var peerAddress: String { "\(host):\(peerPort)" }

        /// - Parameter peerPort: the peer listener's port; nil for the default, `port + 1`.
        public init(id: NodeID, host: String, port: Int, peerPort: Int? = nil, zone: String, dataDirectory: String) {
            self.id = id
            self.host = host
            self.port = port
            self.peerPort = peerPort ?? port + 1
            self.zone = zone
            self.dataDirectory = dataDirectory
        }
    }

    /// How Raft messages travel between nodes (`peer_transport`).
    public enum PeerTransportKind: String, Sendable, Hashable, CaseIterable {
        /// Length-prefixed protobuf frames over TCP to each node's `peer_port` (the default).
        case nio
        /// One `RaftPeer.Send` gRPC stream per peer on the nodes' client ports: the fallback, and
        /// the baseline for comparisons.
        case grpc
    }

    /// The cluster id when `cluster_id` is absent.
    public static let defaultClusterID = "flotilla"

    public enum Profile: String, Sendable, Hashable, CaseIterable {
        case lan, wan
    }

    public struct Timing: Sendable, Hashable {
        public var tick: Duration
        public var electionTicks: Int
        public var heartbeatTicks: Int
        public var requestTimeout: Duration
        public var snapshotInterval: UInt64

        /// Defaults for a LAN (≈0.1–1 ms between nodes): a dead leader is replaced in 100–200 ms.
        public static let lan = Timing(
            tick: .milliseconds(10), electionTicks: 10, heartbeatTicks: 1, requestTimeout: .seconds(5),
            snapshotInterval: 10_000)
        /// Defaults for nodes spread over clouds (≈20–80 ms between zones): elections after 0.5–1 s.
        public static let wan = Timing(
            tick: .milliseconds(50), electionTicks: 10, heartbeatTicks: 2, requestTimeout: .seconds(10),
            snapshotInterval: 10_000)
    }

    /// Sent in every peer connection's hello; a node refuses connections from another cluster.
    public var clusterID: String
    public var peerTransport: PeerTransportKind
    public var profile: Profile
    public var timing: Timing
    public var nodes: [Node]
    /// Agents' heartbeat period, the dead-agent timeout and the default task timeout (`agents:`).
    public var scheduler: SchedulerConfig

    public init(
        clusterID: String = ClusterConfig.defaultClusterID, peerTransport: PeerTransportKind = .nio, profile: Profile = .lan,
        timing: Timing? = nil, nodes: [Node], scheduler: SchedulerConfig = SchedulerConfig()
    ) {
        self.clusterID = clusterID
        self.peerTransport = peerTransport
        self.profile = profile
        self.timing = timing ?? (profile == .lan ? .lan : .wan)
        self.nodes = nodes
        self.scheduler = scheduler
    }

    public func node(_ id: NodeID) -> Node? { nodes.first { $0.id == id } }

    /// The founding voters.
    public var voters: Configuration { Configuration(voters: nodes.map(\.id)) }

    /// The options `flotilla node --id` runs with.
    public func nodeOptions(for id: NodeID) -> NodeOptions {
        var raft = RaftConfig(id: id)
        raft.electionTimeout = timing.electionTicks
        raft.heartbeatInterval = timing.heartbeatTicks
        var options = NodeOptions(raft: raft, bootstrap: voters)
        options.tickInterval = timing.tick
        options.requestTimeout = timing.requestTimeout
        options.snapshotInterval = timing.snapshotInterval
        // Half the election timeout: a leader this slow still sends heartbeats in time, but holds
        // every commit back; it hands over before its followers would have to depose it.
        options.slowSyncThreshold = timing.tick * timing.electionTicks / 2
        return options
    }

    // MARK: YAML

    /// Parses and validates a configuration; the error names the offending field.
    public static func parse(yaml text: String, source: String = "cluster.yaml") throws(ConfigError) -> ClusterConfig {
        let root: Any?
        do {
            // Yams' `load` force-unwraps every mapping key as a string and so crashes the process
            // on a YAML complex key (`? [a, b]: 1`); found by the cluster-config fuzz target. Such
            // a key is refused first, from the composed tree.
            if let tree = try Yams.compose(yaml: text), let key = firstNonScalarKey(tree) {
                let line = key.mark.map { " (line \($0.line))" } ?? ""
                throw ConfigError(source: source, field: "", message: "has a mapping key that is not a plain name\(line): keys are field names")
            }
            root = try Yams.load(yaml: text)
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(source: source, field: "", message: "is not valid YAML: \(error)")
        }
        guard let map = root as? [String: Any] else {
            throw ConfigError(source: source, field: "", message: "must be a mapping with a 'nodes' list")
        }
        func fail(_ field: String, _ message: String) -> ConfigError { ConfigError(source: source, field: field, message: message) }
        for key in map.keys where !["cluster_id", "peer_transport", "profile", "timing", "nodes", "agents"].contains(key) {
            throw fail(key, "is not a known field (expected cluster_id, peer_transport, profile, timing, agents, nodes)")
        }

        var clusterID = defaultClusterID
        if let c = map["cluster_id"] {
            // An unquoted all-digit id arrives as an integer.
            guard let s = (c as? String) ?? (c as? Int).map(String.init), isValidClusterID(s) else {
                throw fail("cluster_id", "must be 1 to 64 letters, digits, '.', '_' or '-', got '\(c)'")
            }
            clusterID = s
        }
        var peerTransport = PeerTransportKind.nio
        if let t = map["peer_transport"] {
            guard let s = t as? String, let parsed = PeerTransportKind(rawValue: s) else {
                throw fail("peer_transport", "must be one of \(PeerTransportKind.allCases.map(\.rawValue).joined(separator: ", ")), got '\(t)'")
            }
            peerTransport = parsed
        }

        var profile = Profile.lan
        if let p = map["profile"] {
            guard let s = p as? String, let parsed = Profile(rawValue: s) else {
                throw fail("profile", "must be one of \(Profile.allCases.map(\.rawValue).joined(separator: ", ")), got '\(p)'")
            }
            profile = parsed
        }
        var timing = profile == .lan ? Timing.lan : Timing.wan
        if let t = map["timing"] {
            guard let t = t as? [String: Any] else { throw fail("timing", "must be a mapping") }
            for (key, value) in t {
                let field = "timing.\(key)"
                switch key {
                case "tick": timing.tick = try duration(value, field: field, fail)
                case "request_timeout": timing.requestTimeout = try duration(value, field: field, fail)
                case "election_ticks": timing.electionTicks = try integer(value, field: field, min: 2, fail)
                case "heartbeat_ticks": timing.heartbeatTicks = try integer(value, field: field, min: 1, fail)
                case "snapshot_interval": timing.snapshotInterval = UInt64(try integer(value, field: field, min: 1, fail))
                default:
                    throw fail(field, "is not a known field (expected tick, election_ticks, heartbeat_ticks, request_timeout, snapshot_interval)")
                }
            }
            if timing.heartbeatTicks >= timing.electionTicks {
                throw fail("timing.heartbeat_ticks", "(\(timing.heartbeatTicks)) must be below timing.election_ticks (\(timing.electionTicks))")
            }
        }

        var scheduler = SchedulerConfig()
        if let a = map["agents"] {
            guard let a = a as? [String: Any] else { throw fail("agents", "must be a mapping") }
            func millis(_ value: Any, _ field: String) throws(ConfigError) -> Millis {
                let d = try duration(value, field: field, fail).components
                return Millis(max(0, d.seconds * 1000 + d.attoseconds / 1_000_000_000_000_000))
            }
            for (key, value) in a {
                let field = "agents.\(key)"
                switch key {
                case "heartbeat_interval": scheduler.heartbeatInterval = try millis(value, field)
                case "dead_after": scheduler.deadAfter = try millis(value, field)
                case "task_timeout": scheduler.defaultTaskTimeout = try millis(value, field)
                default: throw fail(field, "is not a known field (expected heartbeat_interval, dead_after, task_timeout)")
                }
            }
            if let problem = scheduler.problem { throw fail("agents", problem) }
        }

        guard let list = map["nodes"] as? [Any], !list.isEmpty else { throw fail("nodes", "must be a non-empty list of nodes") }
        var nodes: [Node] = []
        for (k, item) in list.enumerated() {
            let at = "nodes[\(k)]"
            guard let n = item as? [String: Any] else { throw fail(at, "must be a mapping with id, address, zone, data_dir") }
            for key in n.keys where !["id", "address", "peer_port", "zone", "data_dir"].contains(key) {
                throw fail("\(at).\(key)", "is not a known field (expected id, address, peer_port, zone, data_dir)")
            }
            let id = try integer(n["id"] as Any, field: "\(at).id", min: 1, fail)
            guard let address = n["address"] as? String else { throw fail("\(at).address", "is required (host:port)") }
            let (host, port) = try hostPort(address, field: "\(at).address", fail)
            let peerPort: Int
            if let p = n["peer_port"] {
                peerPort = try integer(p, field: "\(at).peer_port", min: 1, fail)
                guard peerPort <= 65535 else { throw fail("\(at).peer_port", "must be at most 65535, got \(peerPort)") }
                guard peerPort != port else { throw fail("\(at).peer_port", "\(peerPort) is also the port of the node's address") }
            } else {
                guard port < 65535 else { throw fail("\(at).peer_port", "is required when the address's port is 65535 (the default is that port + 1)") }
                peerPort = port + 1
            }
            guard let zone = n["zone"] as? String, !zone.isEmpty else {
                throw fail("\(at).zone", "is required (e.g. aws-us-east-1, gcp-europe-west1)")
            }
            guard let dir = n["data_dir"] as? String, !dir.isEmpty else { throw fail("\(at).data_dir", "is required (a directory path)") }
            if nodes.contains(where: { $0.id == NodeID(id) }) { throw fail("\(at).id", "\(id) is used by another node") }
            if nodes.contains(where: { $0.host == host && $0.port == port }) { throw fail("\(at).address", "\(address) is used by another node") }
            if let other = nodes.first(where: { $0.host == host && $0.peerPort == port }) {
                throw fail("\(at).address", "\(address) is node \(other.id)'s peer port (peer_port defaults to the address's port + 1: leave a gap, or set peer_port)")
            }
            if let other = nodes.first(where: { $0.host == host && ($0.port == peerPort || $0.peerPort == peerPort) }) {
                let whose = other.port == peerPort ? "the port of node \(other.id)'s address" : "node \(other.id)'s peer port"
                let given = n["peer_port"] == nil ? " (the default: the address's port + 1)" : ""
                throw fail("\(at).peer_port", "\(peerPort)\(given) on \(host) is \(whose); give every node two ports of its own")
            }
            if nodes.contains(where: { $0.host == host && $0.dataDirectory == dir }) {
                throw fail("\(at).data_dir", "\(dir) is used by another node on \(host)")
            }
            nodes.append(Node(id: NodeID(id), host: host, port: port, peerPort: peerPort, zone: zone, dataDirectory: dir))
        }
        return ClusterConfig(
            clusterID: clusterID, peerTransport: peerTransport, profile: profile, timing: timing, nodes: nodes, scheduler: scheduler)
    }

    /// The YAML text of this configuration (what `flotilla cluster up` writes).
    public var yaml: String {
        func ms(_ d: Duration) -> String {
            let c = d.components
            return "\(c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000)ms"
        }
        var lines = [
            "cluster_id: \"\(clusterID)\"",
            "peer_transport: \(peerTransport.rawValue)",
            "profile: \(profile.rawValue)",
            "timing:",
            "  tick: \(ms(timing.tick))",
            "  election_ticks: \(timing.electionTicks)",
            "  heartbeat_ticks: \(timing.heartbeatTicks)",
            "  request_timeout: \(ms(timing.requestTimeout))",
            "  snapshot_interval: \(timing.snapshotInterval)",
            "agents:",
            "  heartbeat_interval: \(scheduler.heartbeatInterval)ms",
            "  dead_after: \(scheduler.deadAfter)ms",
            "  task_timeout: \(scheduler.defaultTaskTimeout)ms",
            "nodes:",
        ]
        for n in nodes {
            lines += [
                "  - id: \(n.id)", "    address: \(n.address)", "    peer_port: \(n.peerPort)", "    zone: \(n.zone)",
                "    data_dir: \(n.dataDirectory)",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A configuration error: the file, the field (e.g. `nodes[2].address`) and what is wrong with it.
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    public var source: String
    public var field: String
    public var message: String
    public var description: String { field.isEmpty ? "\(source) \(message)" : "\(source): \(field) \(message)" }
}

/// 1 to 64 of `A-Z a-z 0-9 . _ -`: it travels in every peer hello, and needs no escaping in YAML.
private func isValidClusterID(_ s: String) -> Bool {
    (1...64).contains(s.utf8.count)
        && s.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
}

private func integer(_ value: Any, field: String, min: Int, _ fail: (String, String) -> ConfigError) throws(ConfigError) -> Int {
    guard let i = value as? Int else { throw fail(field, "must be an integer, got '\(value)'") }
    guard i >= min else { throw fail(field, "must be at least \(min), got \(i)") }
    return i
}

/// Parses `250ms`, `2s`, `1.5s`.
private func duration(_ value: Any, field: String, _ fail: (String, String) -> ConfigError) throws(ConfigError) -> Duration {
    let text = "\(value)".trimmingCharacters(in: .whitespaces)
    let (number, unit): (Substring, Double) =
        text.hasSuffix("ms") ? (text.dropLast(2), 0.001) : text.hasSuffix("s") ? (text.dropLast(), 1) : (Substring(text), 0)
    guard unit > 0, let n = Double(number), n > 0, n * unit <= 3600 else {
        throw fail(field, "must be a positive duration of at most an hour, like 10ms or 2s, got '\(text)'")
    }
    return .microseconds(Int64((n * unit * 1_000_000).rounded()))
}

private func hostPort(_ address: String, field: String, _ fail: (String, String) -> ConfigError) throws(ConfigError) -> (String, Int) {
    guard let colon = address.lastIndex(of: ":"), colon != address.startIndex else {
        throw fail(field, "'\(address)' must be host:port")
    }
    let host = String(address[..<colon])
    guard let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else {
        throw fail(field, "'\(address)' has no valid port (1-65535)")
    }
    return (host, port)
}

/// The first mapping key under `node` that is not a scalar (nil: every key is one).
private func firstNonScalarKey(_ node: Node) -> Node? {
    switch node {
    case .mapping(let mapping):
        for (key, value) in mapping {
            if key.scalar == nil { return key }
            if let bad = firstNonScalarKey(value) { return bad }
        }
    case .sequence(let sequence):
        for value in sequence {
            if let bad = firstNonScalarKey(value) { return bad }
        }
    default:
        break
    }
    return nil
}
