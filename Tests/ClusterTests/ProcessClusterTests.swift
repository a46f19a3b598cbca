import ControlPlane
import Foundation
import Testing

/// Real `flotilla node` processes on 127.0.0.1, started and stopped through the CLI as a user would.
/// Each test uses its own folder, kills what it started and bounds its waits.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ProcessClusterTests {
    static let executable: String = {
        if let path = ProcessInfo.processInfo.environment["FLOTILLA_BIN"] { return path }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/flotilla").path
    }()

    /// Runs the CLI and returns its exit status and output; kills it after `timeout` seconds.
    @discardableResult
    static func flotilla(_ arguments: [String], timeout: Double = 60) async throws -> (status: Int32, output: String) {
        try await runProcess(executable, arguments, timeout: timeout)
    }

    /// A cluster started with `flotilla cluster up`, always taken down with `--purge`.
    static func withProcessCluster(nodes: Int, upArguments: [String] = [], _ body: (String, [String]) async throws -> Void) async throws {
        let dir = NSTemporaryDirectory() + "flotilla-it-\(UUID().uuidString.prefix(8))"
        try await withCleanup {
            let up = try await flotilla(["cluster", "up", "--nodes", String(nodes), "--dir", dir] + upArguments)
            try #require(up.status == 0, "cluster up failed: \(up.output)")
            let config = try ClusterConfig.parse(yaml: String(contentsOfFile: dir + "/cluster.yaml", encoding: .utf8))
            try await withLogsOnFailure(dir) { try await body(dir, config.nodes.map(\.address)) }
        } cleanup: {
            _ = try? await flotilla(["cluster", "down", "--dir", dir, "--purge"])
        }
    }

    /// Runs `body`; if it throws, prints the last lines of every node's and agent's log in `dir`
    /// (the folder is purged afterwards, and a failure on CI must be explainable from its output).
    static func withLogsOnFailure(_ dir: String, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            print(logTails(dir))
            throw error
        }
    }

    /// The last `lines` lines of each `*.log` below `dir`, each headed by its path.
    static func logTails(_ dir: String, lines: Int = 60) -> String {
        let files = (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".log") && !$0.contains("/data/") }
        return files.sorted().map { path in
            let text = (try? String(contentsOfFile: dir + "/" + path, encoding: .utf8)) ?? ""
            return "--- \(dir)/\(path) (last \(lines) lines)\n" + text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    static func pid(_ dir: String, _ id: Int) -> Int32? {
        (try? String(contentsOfFile: "\(dir)/n\(id)/node.pid", encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    static func leader(_ addresses: [String]) async throws -> UInt64 {
        try await ClusterClient.withCluster(addresses) { client in
            for _ in 0..<200 {
                for a in addresses {
                    if let s = await client.status(of: a, timeout: .milliseconds(300)), s.role == "leader" { return s.id }
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw ClusterClient.Failure(description: "no leader")
        }
    }

    static func key(_ k: Int) -> [UInt8] { Array("key-\(k)".utf8) }

    @Test(arguments: [3, 5])
    func electsALeaderAndReportsStatus(nodes: Int) async throws {
        try await Self.withProcessCluster(nodes: nodes) { dir, addresses in
            _ = try await Self.leader(addresses)
            let status = try await Self.flotilla(["status", "--dir", dir, "--json"])
            #expect(status.status == 0)
            let doc = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
            let rows = doc?["nodes"] as? [[String: Any]] ?? []
            #expect(rows.count == nodes)
            #expect(rows.filter { $0["role"] as? String == "leader" }.count == 1)
            let leader = try #require(doc?["leader"] as? Int)
            // Each node's log says who leads.
            for id in 1...nodes {
                let log = try String(contentsOfFile: "\(dir)/n\(id)/node.log", encoding: .utf8)
                #expect(log.contains(id == leader ? "leading at term" : "following node \(leader) at term"), "node \(id): \(log)")
            }
        }
    }

    /// The fallback peer transport: the same cluster with `peer_transport: grpc` elects, commits
    /// and survives a restart of a follower.
    @Test func runsOnTheGRPCPeerTransport() async throws {
        try await Self.withProcessCluster(nodes: 3, upArguments: ["--peer-transport", "grpc"]) { dir, addresses in
            let config = try ClusterConfig.parse(yaml: String(contentsOfFile: dir + "/cluster.yaml", encoding: .utf8))
            #expect(config.peerTransport == .grpc)
            let leader = Int(try await Self.leader(addresses))
            let follower = leader % 3 + 1
            if let pid = Self.pid(dir, follower) { kill(pid, SIGKILL) }
            try await ClusterClient.withCluster(addresses) { client in
                for k in 1...10 { _ = try await client.propose(KeyValueStore.put(Self.key(k), [1])) }
            }
            #expect(try await Self.flotilla(["cluster", "restart-node", String(follower), "--dir", dir]).status == 0)
            let caughtUp = try await ClusterClient.withCluster([addresses[follower - 1]]) { client -> Bool in
                for _ in 0..<200 {
                    if let s = await client.status(of: addresses[follower - 1], timeout: .milliseconds(300)), s.appliedIndex >= 11 { return true }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return false
            }
            #expect(caughtUp)
        }
    }

    /// `flotilla transfer-leadership` moves leadership to the most up-to-date follower, or to
    /// the node named; naming the leader changes nothing.
    @Test func leadershipMovesOnDemand() async throws {
        try await Self.withProcessCluster(nodes: 3) { dir, addresses in
            let first = Int(try await Self.leader(addresses))
            let moved = try await Self.flotilla(["transfer-leadership", "--dir", dir])
            #expect(moved.status == 0, "\(moved.output)")
            let second = Int(try await Self.leader(addresses))
            #expect(second != first)
            #expect(moved.output.contains("node \(second) leads"), "\(moved.output)")
            let target = (1...3).first { $0 != first && $0 != second }!
            let named = try await Self.flotilla(["transfer-leadership", "--to", String(target), "--dir", dir])
            #expect(named.status == 0, "\(named.output)")
            #expect(try await Self.leader(addresses) == UInt64(target))
            let same = try await Self.flotilla(["transfer-leadership", "--to", String(target), "--dir", dir])
            #expect(same.status == 0 && same.output.contains("already leads"), "\(same.output)")
            // Writes go on through the new leader.
            try await ClusterClient.withCluster(addresses) { client in
                _ = try await client.propose(KeyValueStore.put(Self.key(1), [1]))
            }
        }
    }

    /// A node that accepts connections and never answers (stopped, hung) does not hold a client
    /// whose call it gets first: after `hedgeAfter` the call also goes to the other nodes. The
    /// budget (4 s) is shorter than the per-call timeout (5 s) that alone would free the caller,
    /// so without hedging the call fails, which the second half shows.
    @Test func aNodeThatNeverAnswersDoesNotHoldAClient() async throws {
        try await Self.withProcessCluster(nodes: 3) { dir, addresses in
            _ = try await Self.leader(addresses)
            let silent = try ListeningSocket()
            defer { silent.close() }
            let nodes = ["127.0.0.1:\(silent.port)"] + addresses
            let answered = try await ClusterClient.withCluster(nodes, timeout: .seconds(4), hedgeAfter: .milliseconds(100)) { client in
                (try? await client.propose(KeyValueStore.put(Self.key(1), [1]))) != nil
            }
            #expect(answered)
            let unhedged = try await ClusterClient.withCluster(nodes, timeout: .seconds(4), hedgeAfter: nil) { client in
                (try? await client.propose(KeyValueStore.put(Self.key(2), [1]))) != nil
            }
            #expect(!unhedged)
        }
    }

    /// `flotilla node --metrics-port`: a one-node cluster elects itself, and `GET /metrics`
    /// says so in Prometheus' format, with its log positions, fsync histogram and task counts.
    @Test func aNodeServesPrometheusMetrics() async throws {
        let dir = NSTemporaryDirectory() + "flotilla-metrics-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ports = try (0..<3).map { _ in try ListeningSocket() }
        let (clientPort, peerPort, metricsPort) = (ports[0].port, ports[1].port, ports[2].port)
        for p in ports { p.close() }
        let yaml = "nodes:\n  - id: 1\n    address: 127.0.0.1:\(clientPort)\n    peer_port: \(peerPort)\n    zone: z\n    data_dir: \(dir)/data\n"
        try yaml.write(toFile: dir + "/cluster.yaml", atomically: true, encoding: .utf8)
        let node = Process()
        node.executableURL = URL(fileURLWithPath: Self.executable)
        node.arguments = ["node", "--id", "1", "--config", dir + "/cluster.yaml", "--metrics-port", String(metricsPort)]
        node.standardOutput = FileHandle.nullDevice
        node.standardError = FileHandle.nullDevice
        try node.run()
        defer {
            node.terminate()
            kill(node.processIdentifier, SIGKILL)
        }
        var text = ""
        for _ in 0..<200 where !text.contains("flotilla_raft_is_leader 1") {
            try await Task.sleep(for: .milliseconds(50))
            text = httpGet(port: metricsPort, path: "/metrics") ?? ""
        }
        #expect(text.contains("flotilla_raft_is_leader 1"), "\(text)")
        #expect(text.contains("flotilla_raft_leader_id 1"))
        #expect(text.contains("# TYPE flotilla_storage_sync_seconds histogram"))
        #expect(text.contains("flotilla_tasks{state=\"pending\"} 0"))
        #expect(text.contains("flotilla_agents{state=\"live\"} 0"))
        #expect(text.contains("flotilla_raft_leader_changes_total 1"))
        #expect(httpGet(port: metricsPort, path: "/other")?.contains("only GET /metrics") == true)
    }

    /// `cluster up --metrics-base-port`: the local cluster's node serves its metrics, and again
    /// after `restart-node`.
    @Test func aLocalClusterServesMetricsWhenAsked() async throws {
        let free = try ListeningSocket()
        let port = free.port
        free.close()
        try await Self.withProcessCluster(nodes: 1, upArguments: ["--metrics-base-port", String(port)]) { dir, _ in
            func scrape() async throws -> String {
                var text = ""
                for _ in 0..<100 where !text.contains("flotilla_raft_is_leader 1") {
                    text = httpGet(port: port, path: "/metrics") ?? ""
                    if !text.contains("flotilla_raft_is_leader 1") { try await Task.sleep(for: .milliseconds(50)) }
                }
                return text
            }
            #expect(try await scrape().contains("flotilla_raft_is_leader 1"))
            _ = try await Self.flotilla(["cluster", "down", "--dir", dir])
            #expect(try await Self.flotilla(["cluster", "restart-node", "1", "--dir", dir]).status == 0)
            #expect(try await scrape().contains("flotilla_raft_term 2"))
        }
    }

    /// A node whose peer port is taken stops at once, naming the port.
    @Test func aNodeWhosePeerPortIsTakenRefusesToStart() async throws {
        let dir = NSTemporaryDirectory() + "flotilla-pp-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let taken = try ListeningSocket()
        defer { taken.close() }
        let address = try ListeningSocket()
        let clientPort = address.port
        address.close()
        let yaml = "nodes:\n  - id: 1\n    address: 127.0.0.1:\(clientPort)\n    peer_port: \(taken.port)\n    zone: z\n    data_dir: \(dir)/data\n"
        try yaml.write(toFile: dir + "/cluster.yaml", atomically: true, encoding: .utf8)
        let run = try await Self.flotilla(["node", "--id", "1", "--config", dir + "/cluster.yaml"], timeout: 20)
        #expect(run.status != 0)
        #expect(run.output.contains("peer_port \(taken.port)"), "\(run.output)")
        #expect(run.output.contains("cannot listen for peers on 127.0.0.1:\(taken.port)"), "\(run.output)")
    }

    @Test func survivesSIGKILLOfTheLeaderUnderLoad() async throws {
        try await Self.withProcessCluster(nodes: 3) { dir, addresses in
            let firstLeader = try await Self.leader(addresses)
            let acknowledged = try await ClusterClient.withCluster(addresses) { client in
                var acked: [Int] = []
                for k in 1...60 {
                    if k == 25, let pid = Self.pid(dir, Int(firstLeader)) { kill(pid, SIGKILL) }
                    _ = try await client.propose(KeyValueStore.put(Self.key(k), [UInt8(k)]))
                    acked.append(k)
                }
                return acked
            }
            #expect(acknowledged.count == 60)
            let newLeader = try await Self.leader(addresses)
            #expect(newLeader != firstLeader)
            // Every acknowledged write is there, read linearizably through the survivors.
            try await ClusterClient.withCluster(addresses) { client in
                let count = try await client.read(KeyValueStore.count)
                #expect(KeyValueStore.decodeCount(Array(count.result)) == 60)
                for k in [1, 24, 25, 26, 60] {
                    let r = try await client.read(KeyValueStore.get(Self.key(k)))
                    #expect(KeyValueStore.decodeGet(Array(r.result)) == [UInt8(k)])
                }
            }
            // The killed node comes back and catches up.
            #expect(try await Self.flotilla(["cluster", "restart-node", String(firstLeader), "--dir", dir]).status == 0)
            let caughtUp = try await ClusterClient.withCluster(addresses) { client -> Bool in
                let address = addresses[Int(firstLeader) - 1]
                for _ in 0..<200 {
                    if let s = await client.status(of: address, timeout: .milliseconds(300)), s.appliedIndex >= 61 { return true }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return false
            }
            #expect(caughtUp)
        }
    }

    @Test func theWholeClusterRestartsWithItsState() async throws {
        try await Self.withProcessCluster(nodes: 3) { dir, addresses in
            try await ClusterClient.withCluster(addresses) { client in
                for k in 1...20 { _ = try await client.propose(KeyValueStore.put(Self.key(k), [UInt8(k)])) }
            }
            for id in 1...3 { if let pid = Self.pid(dir, id) { kill(pid, SIGKILL) } }
            try await Task.sleep(for: .milliseconds(200))
            for id in 1...3 { #expect(try await Self.flotilla(["cluster", "restart-node", String(id), "--dir", dir]).status == 0) }
            _ = try await Self.leader(addresses)
            try await ClusterClient.withCluster(addresses) { client in
                let count = try await client.read(KeyValueStore.count)
                #expect(KeyValueStore.decodeCount(Array(count.result)) == 20)
            }
        }
    }

    /// Cuts the leader off from the others (both ways) with the nodes' test-only fault files: the
    /// majority elects a new leader and commits; the old leader commits nothing; after healing it
    /// follows the new leader and holds every write.
    @Test func aPartitionedMinorityTakesNoWritesAndCatchesUp() async throws {
        setenv("FLOTILLA_FAULT_FILES", "1", 1)
        defer { unsetenv("FLOTILLA_FAULT_FILES") }
        try await Self.withProcessCluster(nodes: 3) { dir, addresses in
            let old = Int(try await Self.leader(addresses))
            let others = (1...3).filter { $0 != old }
            try others.map(String.init).joined(separator: ",").write(toFile: "\(dir)/n\(old)/faults", atomically: true, encoding: .utf8)
            for o in others { try String(old).write(toFile: "\(dir)/n\(o)/faults", atomically: true, encoding: .utf8) }
            let majority = others.map { addresses[$0 - 1] }
            try await ClusterClient.withCluster(majority) { client in
                for k in 1...10 { _ = try await client.propose(KeyValueStore.put(Self.key(k), [1])) }
            }
            // The isolated old leader cannot get anything committed.
            let refused = try await ClusterClient.withCluster([addresses[old - 1]], timeout: .seconds(3)) { client in
                (try? await client.propose(KeyValueStore.put(Array("minority".utf8), [1]))) == nil
            }
            #expect(refused)
            // Heal: the old leader catches up with the majority's writes.
            for id in 1...3 { try? FileManager.default.removeItem(atPath: "\(dir)/n\(id)/faults") }
            let caughtUp = try await ClusterClient.withCluster([addresses[old - 1]]) { client -> Bool in
                for _ in 0..<200 {
                    if let r = try? await client.read(KeyValueStore.count), KeyValueStore.decodeCount(Array(r.result)) == 10 {
                        return true
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return false
            }
            #expect(caughtUp)
            try await ClusterClient.withCluster(addresses) { client in
                let r = try await client.read(KeyValueStore.get(Array("minority".utf8)))
                #expect(KeyValueStore.decodeGet(Array(r.result)) == nil)
            }
        }
    }

    @Test func aNodeWithACorruptLogRefusesToStart() async throws {
        try await Self.withProcessCluster(nodes: 3) { dir, addresses in
            try await ClusterClient.withCluster(addresses) { client in
                for k in 1...30 { _ = try await client.propose(KeyValueStore.put(Self.key(k), Array(repeating: 7, count: 64))) }
            }
            _ = try await Self.flotilla(["cluster", "down", "--dir", dir])
            // Flip a byte in the middle of node 2's log (not its tail: that would be a torn write).
            let wal = "\(dir)/n2/data/wal"
            let segment = try #require(try FileManager.default.contentsOfDirectory(atPath: wal).filter { $0.hasSuffix(".log") }.sorted().first)
            let path = "\(wal)/\(segment)"
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            try #require(bytes.count > 400)
            bytes[bytes.count / 2] ^= 0xFF
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            // Run the node in the foreground: it must exit with an error naming the file.
            let run = try await Self.flotilla(["node", "--id", "2", "--config", dir + "/cluster.yaml"], timeout: 20)
            #expect(run.status != 0)
            #expect(run.output.contains(segment), "\(run.output)")
            #expect(run.output.contains("offset"), "\(run.output)")
        }
    }
}

/// A TCP socket listening on a free port of 127.0.0.1, to make that port unavailable.
final class ListeningSocket {
    private let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, ok, listen(fd, 1) == 0 else { throw ClusterClient.Failure(description: "cannot listen on 127.0.0.1") }
        self.fd = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    func close() { _ = Glibc.close(fd) }
}

/// The body of `GET path` on 127.0.0.1:`port` (HTTP/1.1, one request, read to the end), or nil if
/// nothing answers.
func httpGet(port: Int, path: String) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { _ = Glibc.close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    let connected = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
    guard connected else { return nil }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    guard write(fd, request, request.count) == request.count else { return nil }
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let n = read(fd, &buffer, buffer.count)
        if n <= 0 { break }
        response += buffer[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    return text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) }
}
