import ArgumentParser
import ChaosCheck
import Foundation

/// `bench chaos`: the fault scenarios on a real local cluster, every client operation checked.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract: "Inject faults into a real 5-node cluster under load; check every client operation; time the recovery.",
        discussion: """
            Each scenario starts its own cluster (nodes and agents on 127.0.0.1, every peer link through \
            a fault-injecting TCP proxy), runs a steady load of clients that submit tasks (through the \
            retrying client, or pinned to one node), re-submit keys whose outcome was unknown, and read \
            tasks; injects its faults; heals everything; and checks the recorded history: every \
            acknowledged submission exists once and finishes, nothing succeeds twice, no read is stale, \
            and every node holds the same manifest. Recovery times are stored like any phase's samples.

            Scenarios: \(ChaosScenario.allCases.map(\.rawValue).joined(separator: ", ")).

            A failed scenario prints its seed and the command that replays its fault schedule, keeps \
            the cluster folder (config, data, node and agent logs, history.txt), and bench exits 1.
            """)

    @OptionGroup var output: OutputOptions

    @Option(help: "Scenarios, comma-separated, or 'all'.")
    var scenario = "all"

    @Option(help: "Seed of the fault schedule and the clients' choices (victims, which node a pinned client uses, jitter).")
    var seed: UInt64 = 1

    @Option(help: "Control-plane nodes (3 or more; the zone split needs 2 zones).") var nodes = 5
    @Option(help: "Agents.") var agents = 3
    @Option(help: "Load clients that retry through the cluster client (their acknowledgements are the throughput).") var clients = 4
    @Option(help: "Load clients that send each operation to one random node, once.") var pinnedClients = 2
    @Option(help: "Matrix size of the load's tasks (small: the control plane is what is tested).") var size: UInt32 = 128
    @Option(help: "Seconds of load before the first fault (default 5; quick 3).") var warmupSeconds: Double?
    @Option(help: "Seconds a fault lasts (default 5; quick 2).") var hold: Double?
    @Option(help: "Seconds of load after a fault heals (default 5; quick 2).") var recovery: Double?

    func validate() throws {
        try checkRange(nodes, "--nodes", 3...localClusterNodes.upperBound, why: "the zone split needs 2 zones and a majority")
        try checkRange(agents, "--agents", 1...64)
        try checkRange(clients, "--clients", 1...64)
        try checkRange(pinnedClients, "--pinned-clients", 0...64)
        try checkRange(size, "--size", 16...4096)
        // Seconds become Durations (which trap on infinities) and whole milliseconds.
        try checkRange(warmupSeconds, "--warmup-seconds", 0...3600, unit: "seconds")
        try checkRange(hold, "--hold", 0.1...3600, unit: "seconds")
        try checkRange(recovery, "--recovery", 0...3600, unit: "seconds")
        _ = try scenarios()
    }

    func scenarios() throws -> [ChaosScenario] {
        if scenario == "all" { return ChaosScenario.allCases }
        let names = scenario.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let list = names.compactMap(ChaosScenario.init(rawValue:))
        guard !list.isEmpty, list.count == names.count else {
            throw ValidationError(
                "--scenario must be 'all' or a comma-separated list of \(ChaosScenario.allCases.map(\.rawValue).joined(separator: ", ")), not '\(scenario)'")
        }
        return list
    }

    var settings: ChaosSettings {
        ChaosSettings(
            nodes: nodes, agents: agents, clients: clients, pinnedClients: pinnedClients, size: size,
            warmup: warmupSeconds ?? (output.quick ? 3 : 5), hold: hold ?? (output.quick ? 2 : 5), recovery: recovery ?? (output.quick ? 2 : 5),
            seed: seed, quick: output.quick)
    }

    func run() async throws {
        let progress = Progress(quiet: false)
        let list = try scenarios()
        let settings = settings
        let parameters = [
            "scenarios": list.map(\.rawValue).joined(separator: ","), "seed": String(seed), "nodes": String(nodes), "agents": String(agents),
            "clients": String(clients), "pinned_clients": String(pinnedClients), "size": String(size), "warmup_s": String(settings.warmup), "hold_s": String(settings.hold),
            "recovery_s": String(settings.recovery), "mechanism": ChaosCluster.mechanism,
        ]
        try await execute(phase: "chaos", common: try CommonOptions.defaults(output: output), progress: progress, parameters: parameters) { context in
            var out = PhaseOutput()
            var failed: [String] = []
            for (k, s) in list.enumerated() {
                context.progress.step("chaos", s.rawValue, done: k, total: list.count)
                let r = try await runChaosScenario(s, settings: settings, workDir: context.workDirectory, keep: context.keepCluster, progress: context.progress)
                out.measurements += r.output.measurements
                out.notes += r.output.notes
                if out.clusterConfig.isEmpty { out.clusterConfig = r.output.clusterConfig }
                context.progress.line(verdictLine(r))
                if !r.passed {
                    for a in r.report.anomalies.prefix(20) { context.progress.line("[chaos]   \(a)") }
                    for f in r.failures { context.progress.line("[chaos]   \(f)") }
                    let replay = "bench chaos --scenario \(s.rawValue) --seed \(seed)" + (output.quick ? " --quick" : "")
                    context.progress.line("[chaos]   replay: \(replay); logs and history kept in \(r.dir)")
                    failed.append("\(s.rawValue) (replay: \(replay))")
                    out.notes.append("\(s.rawValue) FAILED: " + (r.report.anomalies.map(\.description) + r.failures).prefix(5).joined(separator: "; "))
                }
            }
            context.progress.step("chaos", "done", done: list.count, total: list.count)
            if !failed.isEmpty { out.failure = "chaos: \(failed.count) scenario(s) failed: \(failed.joined(separator: ", "))" }
            return out
        }
    }
}

private func verdictLine(_ r: ChaosResult) -> String {
    let m = r.output.measurements
    func first(_ metric: String) -> String {
        m.first { $0.metric == metric }.map { format($0.value) + " ms" } ?? "-"
    }
    let verdict = r.passed ? "PASS" : "FAIL"
    return "[chaos] \(r.scenario.rawValue): \(verdict) — \(r.report.operations) operations, \(r.report.acknowledged) acknowledged, "
        + "\(r.report.unknown) unknown, \(r.report.reads) reads, \(r.report.anomalies.count) anomalies; "
        + "detect \(first("detect_ms")), new leader \(first("new_leader_ms")), first commit \(first("first_commit_ms"))"
}
