import ArgumentParser
import ControlPlane
import Foundation
import LocalCluster
import Raft

/// `flotilla measure`: the control plane's own figures on a local cluster (commit latency,
/// throughput, failover). `bench` (issue 5) will run these phases with statistics and storage;
/// this command gives the raw figures recorded in docs/performance.md.
struct MeasureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure",
        abstract: "Measure commit latency, throughput and leader failover on a local cluster.",
        subcommands: [Commit.self, Failover.self, TaskFailover.self])

    struct Commit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Proposals committed through the cluster: latency percentiles and proposals/s.")

        @Option(help: "The cluster's folder (from `flotilla cluster up`).")
        var dir = LocalCluster.defaultDirectory

        @Option(help: "Concurrent clients, each proposing one command at a time.")
        var clients = 1

        @Option(help: "Seconds to measure (after a 1 s warm-up).")
        var seconds = 10.0

        @Option(help: "Bytes per command.")
        var size = 128

        func validate() throws {
            try checkRange(clients, "--clients", 1...1024)
            try checkRange(seconds, "--seconds", 0.001...600, unit: "seconds")
            try checkRange(size, "--size", 0...(1 << 20), unit: "bytes")
        }

        func run() async throws {
            let addresses = try loadClusterConfig(LocalCluster(dir: dir).configPath).nodes.map(\.address)
            let value = [UInt8](repeating: 0x5A, count: size)
            let (clients, seconds) = (self.clients, self.seconds)
            let latencies = try await ClusterClient.withCluster(addresses) { client -> [Double] in
                let warmUpEnd = ContinuousClock.now.advanced(by: .seconds(1))
                let end = warmUpEnd.advanced(by: .milliseconds(Int64(seconds * 1000)))
                return try await withThrowingTaskGroup(of: [Double].self) { group in
                    for c in 0..<clients {
                        group.addTask {
                            var samples: [Double] = []
                            var k = 0
                            while ContinuousClock.now < end {
                                k += 1
                                let started = ContinuousClock.now
                                _ = try await client.propose(KeyValueStore.put(Array("c\(c)-\(k % 1000)".utf8), value))
                                if started >= warmUpEnd { samples.append(milliseconds(started.duration(to: .now))) }
                            }
                            return samples
                        }
                    }
                    var all: [Double] = []
                    for try await s in group { all += s }
                    return all
                }
            }
            let sorted = latencies.sorted()
            print(String(format: "clients %d, %d proposals in %.1f s: %.0f proposals/s", clients, sorted.count, seconds, Double(sorted.count) / seconds))
            print(String(format: "commit latency ms: p50 %.2f, p90 %.2f, p99 %.2f, max %.2f",
                percentile(sorted, 0.5), percentile(sorted, 0.9), percentile(sorted, 0.99), sorted.last ?? 0))
        }
    }

    struct Failover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "SIGKILL the leader under a stream of proposals; time to a new leader and to the first new commit.",
            discussion: "Each trial kills the leader, measures, restarts the victim with `cluster restart-node` and waits for it to catch up.")

        @Option(help: "The cluster's folder (from `flotilla cluster up`).")
        var dir = LocalCluster.defaultDirectory

        @Option(help: "How many kills.")
        var trials = 20

        func validate() throws {
            try checkRange(trials, "--trials", 1...1000)
        }

        func run() async throws {
            let cluster = LocalCluster(dir: dir)
            let config = try loadClusterConfig(cluster.configPath)
            let addresses = config.nodes.map(\.address)
            var toLeader: [Double] = []
            var toCommit: [Double] = []
            for trial in 1...trials {
                let (leaderMs, commitMs) = try await ClusterClient.withCluster(addresses, timeout: .seconds(10), maxBackoff: .milliseconds(10)) { client in
                    try await Self.trial(client: client, cluster: cluster, config: config)
                }
                toLeader.append(leaderMs)
                toCommit.append(commitMs)
                print(String(format: "trial %d: new leader after %.0f ms, first commit after %.0f ms", trial, leaderMs, commitMs))
            }
            for (name, values) in [("kill → new leader", toLeader), ("kill → first new commit", toCommit)] {
                let s = values.sorted()
                print(String(format: "%@ ms over %d trials: median %.0f, p90 %.0f, min %.0f, max %.0f",
                    name, s.count, percentile(s, 0.5), percentile(s, 0.9), s.first ?? 0, s.last ?? 0))
            }
        }

        /// One kill: returns (ms to a new leader, ms to the first commit proposed after the kill).
        static func trial(client: ClusterClient, cluster: LocalCluster, config: ClusterConfig) async throws -> (Double, Double) {
            var leader: LeaderSeen?
            for _ in 0..<400 where leader == nil {
                for n in config.nodes {
                    if let s = await client.status(of: n.address, timeout: .milliseconds(200)), s.role == "leader" {
                        leader = LeaderSeen(id: s.id, term: s.term)
                    }
                }
                if leader == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            guard let old = leader, let pid = cluster.pid(old.id) else { throw CLIError("no leader to kill") }
            // Warm the path with a commit, then kill and race a writer and a leader watcher.
            _ = try await client.propose(KeyValueStore.put(Array("warm".utf8), [1]))
            let killed = ContinuousClock.now
            kill(pid, SIGKILL)
            async let commit: Double = {
                _ = try await client.propose(KeyValueStore.put(Array("after-kill".utf8), [1]))
                return milliseconds(killed.duration(to: .now))
            }()
            async let elected: Double = {
                let survivors = config.nodes.filter { $0.id != old.id }
                while true {
                    for n in survivors {
                        if let s = await client.status(of: n.address, timeout: .milliseconds(100)), s.role == "leader", s.term > old.term {
                            return milliseconds(killed.duration(to: .now))
                        }
                    }
                    try await Task.sleep(for: .milliseconds(2))
                }
            }()
            let result = try await (elected, commit)
            // Bring the victim back and let it catch up before the next trial.
            _ = try cluster.start(old.id)
            let target = config.node(old.id)!.address
            for _ in 0..<500 {
                if let s = await client.status(of: target, timeout: .milliseconds(200)), s.leaderID != 0, s.appliedIndex > 0 {
                    let leaderStatus = await client.status(of: config.node(s.leaderID)?.address ?? target)
                    if s.appliedIndex >= (leaderStatus?.commitIndex ?? .max) { break }
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            return result
        }
    }
}

private struct LeaderSeen {
    var id: UInt64
    var term: UInt64
}

func milliseconds(_ d: Duration) -> Double {
    let c = d.components
    return Double(c.seconds) * 1000 + Double(c.attoseconds) / 1e15
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
}
