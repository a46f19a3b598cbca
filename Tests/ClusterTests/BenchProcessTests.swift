import BenchStore
import Foundation
import Testing

/// The `bench` executable end to end: a small real failover phase on 3 nodes, and the regression
/// gate on stored runs. Asserts outcomes (no task lost or recorded twice, verdicts, exit status),
/// never times.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct BenchProcessTests {
    static let bench: String = {
        if let path = ProcessInfo.processInfo.environment["BENCH_BIN"] { return path }
        return URL(fileURLWithPath: ProcessClusterTests.executable).deletingLastPathComponent().appendingPathComponent("bench").path
    }()

    /// Runs `bench` (see ``runProcess(_:_:environment:timeout:)``), then kills what a crashed or
    /// stopped bench left behind: the processes whose command line names one of its folders.
    static func run(_ arguments: [String], timeout: Double = 240, environment extra: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        var environment = ProcessInfo.processInfo.environment
        environment["FLOTILLA_BIN"] = ProcessClusterTests.executable
        environment.merge(extra) { _, new in new }
        let result = try await runProcess(bench, arguments, environment: environment, timeout: timeout)
        for argument in arguments where argument.hasPrefix(NSTemporaryDirectory()) { killProcesses(mentioning: argument) }
        return result
    }

    @Test func aSmallFailoverPhaseLosesNoTask() async throws {
        let dir = NSTemporaryDirectory() + "bench-it-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try await Self.run([
            "phase", "failover", "--nodes", "3", "--agents", "2", "--trials", "2", "--size", "64",
            "--db", "\(dir)/db.sqlite", "--results", "\(dir)/results", "--plots", "\(dir)/plots", "--work-dir", "\(dir)/clusters",
        ])
        #expect(result.status == 0, "\(result.output)")
        let store = try RunStore(path: "\(dir)/db.sqlite")
        let run = try #require(try store.runs(phase: "failover").first)
        #expect(run.status == .completed)
        let samples = try store.samples(runID: run.id)
        func values(_ metric: String) -> [Double] { samples.filter { $0.metric == metric }.map(\.value) }
        #expect(values("run_tasks_lost") == [0])
        #expect(values("run_tasks_completed_twice") == [0])
        #expect((values("run_tasks_acknowledged").first ?? 0) > 0)
        #expect(values("tasks_lost") == [0, 0])
        #expect(values("first_commit_ms").count == 2)
        // Its CSV and charts are written, and its cluster folder removed.
        #expect(FileManager.default.fileExists(atPath: "\(dir)/results/failover-run\(run.id).csv"))
        let plots = (try? FileManager.default.contentsOfDirectory(atPath: "\(dir)/plots")) ?? []
        #expect(plots.contains { $0.hasSuffix(".png") } && plots.contains { $0.hasSuffix(".gp") })
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/clusters/failover"))
    }

    @Test func compareSaysSameForIdenticalRunsAndWorseForADelayedOne() async throws {
        let dir = NSTemporaryDirectory() + "bench-cmp-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try RunStore(path: "\(dir)/db.sqlite")
        // Three stored overhead runs: A, A' (the same distribution) and C (every task 300 ms slower).
        var rng = SystemRandomNumberGenerator()
        let base = (0..<20).map { _ in 1000 + Double.random(in: -30...30, using: &rng) }
        func record(_ tag: String, _ values: [Double]) throws {
            let id = try store.beginRun(RunInfo(tag: tag, phase: "overhead", startedAt: Date()))
            try store.addSamples(values.enumerated().map { k, v in
                Sample(runID: id, metric: "end_to_end_ms", unit: "ms", value: v, repetition: k, sequence: k, labels: ["size": "1024"])
            })
            try store.finishRun(id: id, status: .completed)
        }
        try record("a", base)
        try record("a-again", base.shuffled())
        try record("delayed", base.map { $0 + 300 })
        let same = try await Self.run(["compare", "a", "a-again", "--db", "\(dir)/db.sqlite"])
        #expect(same.status == 0, "\(same.output)")
        #expect(same.output.contains("0 worse") && same.output.contains(" same"), "\(same.output)")
        let worse = try await Self.run(["compare", "a", "delayed", "--db", "\(dir)/db.sqlite"])
        #expect(worse.status == 1, "\(worse.output)")
        #expect(worse.output.contains("worse"), "\(worse.output)")
        // The other way round it is an improvement, not a regression.
        let better = try await Self.run(["compare", "delayed", "a", "--db", "\(dir)/db.sqlite"])
        #expect(better.status == 0 && better.output.contains("better"), "\(better.output)")
    }
}
