import Foundation
import Testing

/// `bench chaos`: a short version of every scenario on a real 5-node cluster with agents, its
/// faults injected into real processes and real sockets. Asserts the history checker's verdict
/// and the scenario's own expectations (exit status 0, no anomaly, nothing lost or duplicated),
/// never times; and that a cluster with a deliberate bug fails the same run.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ChaosProcessTests {
    static let scenarios = ["leader-kill", "agent-kill", "partition", "cascade", "pause", "disk", "power-loss", "wan"]

    /// Runs `bench chaos` in a fresh folder; returns its exit status, output and JSON summary.
    static func chaos(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String, metrics: [String: Double]) {
        let dir = NSTemporaryDirectory() + "chaos-it-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try await BenchProcessTests.run(
            ["chaos", "--quick", "--json", "--db", dir + "/bench.sqlite", "--results", dir + "/results", "--plots", dir + "/plots",
             "--work-dir", dir + "/clusters"] + arguments,
            timeout: 270, environment: environment)
        // The JSON summary is the one line of standard output that is a JSON object.
        var metrics: [String: Double] = [:]
        if let line = result.output.split(separator: "\n").first(where: { $0.hasPrefix("{\"") }),
            let json = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
            let summaries = json["summaries"] as? [[String: Any]]
        {
            for s in summaries {
                if let metric = s["metric"] as? String, let median = s["median"] as? Double { metrics[metric] = (metrics[metric] ?? 0) + median }
            }
        }
        return (result.status, result.output, metrics)
    }

    @Test("every scenario, short: the checker finds nothing lost, duplicated or stale", arguments: scenarios)
    func scenarioPasses(_ scenario: String) async throws {
        let run = try await Self.chaos(["--scenario", scenario, "--seed", "1"])
        #expect(run.status == 0, "bench chaos --scenario \(scenario) failed:\n\(run.output.suffix(4000))")
        #expect(run.output.contains("[chaos] \(scenario): PASS"))
        #expect(run.metrics["anomalies"] == 0)
        #expect(run.metrics["tasks_lost"] == 0)
        #expect(run.metrics["duplicate_completions"] == 0)
        // The run did work: clients were acknowledged and read through the faults.
        #expect((run.metrics["acknowledged_submissions"] ?? 0) > 0)
        #expect((run.metrics["reads"] ?? 0) > 0)
        // The deposed-leader check (nothing sent to a cut-off or stopped leader commits) had
        // submissions to look at.
        if ["partition", "pause"].contains(scenario) { #expect((run.metrics["submissions_to_deposed_leader"] ?? 0) > 0) }
    }

    @Test("a cluster that ignores idempotency keys fails the run, which names the anomaly and the replay command")
    func brokenClusterFails() async throws {
        let run = try await Self.chaos(["--scenario", "leader-kill", "--seed", "3"], environment: ["FLOTILLA_INJECT_MANIFEST_BUG": "ignoreSubmissionKeys"])
        #expect(run.status != 0)
        #expect(run.output.contains("[chaos] leader-kill: FAIL"))
        #expect(run.output.contains("duplicateSubmission"))
        #expect(run.output.contains("replay: bench chaos --scenario leader-kill --seed 3 --quick"))
        #expect((run.metrics["duplicate_completions"] ?? 0) > 0)
    }
}
