import ArgumentParser
import ControlPlane
import FlotillaProto
import Foundation
import LocalCluster

/// Where to find a cluster: a local cluster's folder, a config file, or explicit addresses.
struct ClusterLocation: ParsableArguments {
    @Option(help: "The folder of a local cluster started with `flotilla cluster up` (default: flotilla-cluster).")
    var dir: String?

    @Option(help: "A cluster configuration file.")
    var config: String?

    @Option(help: "Comma-separated node addresses (host:port) of a cluster on other machines.")
    var nodes: String?

    func validate() throws {
        if [dir, config, nodes].compactMap({ $0 }).count > 1 {
            throw ValidationError("give one of --dir, --config or --nodes")
        }
    }

    /// The nodes' client addresses.
    func addresses() throws -> [String] {
        if let nodes { return nodes.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
        let path = config ?? (dir.map { $0 + "/cluster.yaml" }) ?? LocalCluster.defaultDirectory + "/cluster.yaml"
        return try loadClusterConfig(path).nodes.map(\.address)
    }
}

/// Every node's status (nil: no answer within 2 s), in the order of `addresses`. All nodes are
/// asked at once: a dead node costs one timeout, not one per node.
func nodeStatuses(_ addresses: [String]) async throws -> [StatusRow] {
    try await ClusterClient.withCluster(addresses) { client in
        await withTaskGroup(of: (Int, StatusRow).self) { group in
            for (k, a) in addresses.enumerated() {
                group.addTask { (k, StatusRow(address: a, status: await client.status(of: a))) }
            }
            var rows: [(Int, StatusRow)] = []
            for await row in group { rows.append(row) }
            return rows.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }
}

/// `flotilla status`: each node's role, term and indexes, and the leader.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show each node's role, term, commit and applied index, and the leader.")

    @OptionGroup var location: ClusterLocation

    @Flag(help: "Print JSON for scripts.")
    var json = false

    func run() async throws {
        let addresses = try location.addresses()
        let statuses = try await nodeStatuses(addresses)
        let leader = statuses.compactMap(\.status).first { $0.role == "leader" }?.id
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let doc = StatusDocument(leader: leader, nodes: statuses.map(NodeJSON.init))
            print(String(decoding: try encoder.encode(doc), as: UTF8.self))
            if statuses.allSatisfy({ $0.status == nil }) { throw ExitCode(1) }
            return
        }
        let header = ["ID", "ADDRESS", "ZONE", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAST"]
        var rows = [header]
        for row in statuses {
            guard let s = row.status else {
                rows.append(["?", row.address, "", "unreachable", "", "", "", "", ""])
                continue
            }
            rows.append([
                String(s.id), s.address, s.zone, s.role, String(s.term), s.leaderID == 0 ? "-" : String(s.leaderID),
                String(s.commitIndex), String(s.appliedIndex), String(s.lastIndex),
            ])
        }
        printTable(rows)
        print(leader.map { "leader: node \($0)" } ?? "no leader")
        if statuses.allSatisfy({ $0.status == nil }) { throw CLIError("no node answered") }
    }
}

struct StatusRow: Sendable {
    var address: String
    var status: Flotilla_V1_NodeStatus?
}

struct StatusDocument: Encodable {
    var leader: UInt64?
    var nodes: [NodeJSON]
}

struct NodeJSON: Encodable {
    var address: String
    var reachable: Bool
    var id: UInt64?
    var zone: String?
    var role: String?
    var term: UInt64?
    var leader: UInt64?
    var commitIndex: UInt64?
    var appliedIndex: UInt64?
    var lastIndex: UInt64?
    var snapshotIndex: UInt64?
    var voters: [UInt64]?
    var peers: [PeerJSON]?

    struct PeerJSON: Encodable {
        var id: UInt64
        var matchIndex: UInt64
        var nextIndex: UInt64
        var state: String
    }

    init(_ row: StatusRow) {
        address = row.address
        reachable = row.status != nil
        guard let s = row.status else { return }
        id = s.id
        zone = s.zone
        role = s.role
        term = s.term
        leader = s.leaderID
        commitIndex = s.commitIndex
        appliedIndex = s.appliedIndex
        lastIndex = s.lastIndex
        snapshotIndex = s.snapshotIndex
        voters = s.configuration.voters
        peers = s.peers.map { PeerJSON(id: $0.id, matchIndex: $0.matchIndex, nextIndex: $0.nextIndex, state: $0.state) }
    }
}

func printTable(_ rows: [[String]]) {
    guard let first = rows.first else { return }
    let widths = (0..<first.count).map { c in rows.map { $0[c].count }.max() ?? 0 }
    for row in rows {
        print(zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
    }
}
