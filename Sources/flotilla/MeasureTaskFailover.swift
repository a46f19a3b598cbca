import ArgumentParser
import ControlPlane
import FlotillaProto
import Foundation
import LocalCluster
import GRPCCore
import GRPCNIOTransportHTTP2
import Manifest

extension MeasureCommand {
    /// `flotilla measure task-failover`: SIGKILL the leader while agents work through a queue of
    /// small tasks; time from the kill to the first assignment and the first completion that the
    /// new leader records (timestamps from the manifest, stamped by the new leader's wall clock).
    struct TaskFailover: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "task-failover",
            abstract: "Kill the leader under a task load; time to the first reassignment and completion after the kill.",
            discussion: """
                Needs a local cluster with agents (e.g. `flotilla cluster up --nodes 3 --agents 2`). \
                Each trial submits a queue of small matmul tasks, kills the leader with SIGKILL once \
                tasks complete steadily, reads from the manifest when the new leader first assigned \
                and first recorded a completion, checks that no task is recorded twice, and restarts \
                the victim. Numbers are wall-clock milliseconds on this machine.
                """)

        @Option(help: "The cluster's folder (from `flotilla cluster up`).")
        var dir = LocalCluster.defaultDirectory

        @Option(help: "How many kills.")
        var trials = 10

        @Option(help: "Matrix size of the tasks.")
        var size: UInt32 = 128

        func validate() throws {
            try checkRange(trials, "--trials", 1...1000)
            try checkRange(size, "--size", 1...TaskSpec.maxSize)
        }

        func run() async throws {
            let cluster = LocalCluster(dir: dir)
            let config = try loadClusterConfig(cluster.configPath)
            let addresses = config.nodes.map(\.address)
            var toAssign: [Double] = []
            var toComplete: [Double] = []
            for trial in 1...trials {
                let (a, c) = try await ClusterClient.withCluster(addresses, timeout: .seconds(20), maxBackoff: .milliseconds(20)) { client in
                    try await runTrial(client, cluster: cluster, config: config)
                }
                toAssign.append(a)
                toComplete.append(c)
                print(String(format: "trial %d: first assignment %.0f ms, first completion %.0f ms after the kill", trial, a, c))
            }
            for (name, values) in [("kill → first assignment by the new leader", toAssign), ("kill → first completion recorded", toComplete)] {
                let s = values.sorted()
                print(String(format: "%@, ms over %d trials: median %.0f, p90 %.0f, min %.0f, max %.0f",
                    name, s.count, percentile(s, 0.5), percentile(s, 0.9), s.first ?? 0, s.last ?? 0))
            }
        }

        private func tasks(_ client: ClusterClient, after: UInt64) async throws -> [Flotilla_V1_Task] {
            let request = Flotilla_V1_ListTasksRequest.with {
                $0.afterID = after
                $0.limit = 100_000
            }
            return try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).listTasks(request) }.tasks
        }

        private func runTrial(_ client: ClusterClient, cluster: LocalCluster, config: ClusterConfig) async throws -> (Double, Double) {
            let submitted = try await client.withSession { id, sequence in
                let request = Flotilla_V1_SubmitRequest.with {
                    $0.clientID = id
                    $0.sequence = sequence
                    $0.count = 400
                    $0.spec = .with {
                        $0.kind = "matmul"
                        $0.size = size
                        $0.threads = 1
                    }
                }
                return try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).submit(request) }
            }
            let after = submitted.firstID - 1
            // Steady state: some of this batch completed.
            while try await tasks(client, after: after).filter({ $0.state == "succeeded" }).count < 20 {
                try await Task.sleep(for: .milliseconds(20))
            }
            var leader: UInt64 = 0
            for n in config.nodes where leader == 0 {
                if let s = await client.status(of: n.address, timeout: .milliseconds(300)), s.role == "leader" { leader = s.id }
            }
            guard leader != 0, let pid = cluster.pid(leader) else { throw CLIError("no leader to kill") }
            let killedAt = wallClockMillis()
            kill(pid, SIGKILL)
            // Wait for the batch to finish under the new leader.
            let deadline = Date().addingTimeInterval(120)
            var batch: [Flotilla_V1_Task] = []
            while Date() < deadline {
                batch = (try? await tasks(client, after: after)) ?? batch
                if batch.count == 400 && batch.allSatisfy({ ["succeeded", "failed", "cancelled"].contains($0.state) }) { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let duplicates = batch.filter { t in t.attempts.filter { $0.outcome == "succeeded" }.count > 1 }
            guard duplicates.isEmpty else { throw CLIError("tasks recorded succeeded twice: \(duplicates.map(\.id))") }
            guard batch.allSatisfy({ $0.state == "succeeded" }) else {
                throw CLIError("not every task succeeded: \(batch.filter { $0.state != "succeeded" }.map { "\($0.id): \($0.state)" }.prefix(10))")
            }
            let attempts = batch.flatMap(\.attempts)
            let firstAssign = attempts.map(\.assignedAtMs).filter { $0 > killedAt }.min() ?? 0
            let firstDone = attempts.filter { $0.outcome == "succeeded" }.map(\.endedAtMs).filter { $0 > killedAt }.min() ?? 0
            // Bring the victim back before the next trial.
            _ = try cluster.start(leader)
            try await Task.sleep(for: .seconds(1))
            return (Double(firstAssign) - Double(killedAt), Double(firstDone) - Double(killedAt))
        }
    }
}
