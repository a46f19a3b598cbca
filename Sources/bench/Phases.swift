import ControlPlane
import FlotillaProto
import Foundation
import Kernels
import LocalCluster
import Manifest

/// What every phase needs: repetitions, where to put a cluster's folder, progress.
struct PhaseContext: Sendable {
    var repeats: Int
    var warmups: Int
    var quick: Bool
    var workDirectory: String
    var progress: Progress
    var keepCluster = false
    /// Extra arguments for every agent a phase starts (the hidden delay injection).
    var agentArguments: [String] = []
}

private func labels(_ pairs: (String, Any)...) -> [String: String] {
    Dictionary(uniqueKeysWithValues: pairs.map { ($0.0, "\($0.1)") })
}

// MARK: - baseline

/// GFLOP/s of the kernel alone, in this process, per size and BLAS thread count.
func runBaseline(sizes: [Int], threads: [Int], precision: Precision, context: PhaseContext) -> PhaseOutput {
    var out = PhaseOutput()
    let total = sizes.count * threads.count * (context.warmups + context.repeats)
    var done = 0
    for t in threads {
        if let peak = CPUInfo.theoreticalPeakGFLOPS(cores: t, precision: precision) {
            out.add("peak_gflops", "GFLOP/s", peak, labels(("threads", t), ("precision", precision.rawValue)))
        }
    }
    for size in sizes {
        for t in threads {
            for rep in 0..<(context.warmups + context.repeats) {
                context.progress.step("baseline", "n=\(size), \(t) thread\(t == 1 ? "" : "s")", done: done, total: total)
                done += 1
                let p = MatmulParameters(size: size, precision: precision, seed: UInt64(rep + 1), threads: t)
                do {
                    let r = try runMatmul(p)
                    let l = labels(("size", size), ("threads", t), ("precision", precision.rawValue), ("kernel", r.kernel))
                    let warm = rep < context.warmups
                    out.add("gflops", "GFLOP/s", r.gflops, l, warmup: warm)
                    out.add("compute_ms", "ms", r.computeSeconds * 1000, l, warmup: warm)
                    out.add("generation_ms", "ms", r.generationSeconds * 1000, l, warmup: warm)
                    out.add("verification_ms", "ms", r.verificationSeconds * 1000, l, warmup: warm)
                    if !r.verified { out.notes.append("n=\(size) threads=\(t): the product FAILED verification") }
                } catch {
                    out.notes.append("n=\(size) threads=\(t): skipped: \(error)")
                    done += context.warmups + context.repeats - rep - 1
                    break
                }
            }
        }
    }
    context.progress.step("baseline", "done", done: total, total: total)
    return out
}

// MARK: - overhead

/// The cost of going through the cluster, one task at a time on one agent, per size; and the
/// submission-to-commit latency under a stream of small submissions.
func runOverhead(nodes: Int, sizes: [Int], stream: Int, streamClients: Int, context: PhaseContext) async throws -> PhaseOutput {
    var out = PhaseOutput()
    var scheduler = SchedulerConfig()
    scheduler.heartbeatInterval = 500
    scheduler.deadAfter = 5_000
    return try await withBenchCluster(nodes: nodes, dir: context.workDirectory + "/overhead", scheduler: scheduler, context: context) { cluster in
    out.clusterConfig = cluster.config.yaml
    try await cluster.startAgents(["a1"], extraArguments: context.agentArguments)
    let perSize = context.warmups + context.repeats
    let total = sizes.count * perSize + 1
    var done = 0
    let started = Date()
    for size in sizes {
        for rep in 0..<perSize {
            context.progress.step("overhead", "n=\(size) task \(rep + 1)/\(perSize)", done: done, total: total)
            done += 1
            let (submitMs, e2eMs, task) = try await cluster.withClient { client in
                let t0 = ContinuousClock.now
                let s = try await client.submitMatmul(size: UInt32(size), seed: UInt64(rep + 1))
                let t1 = ContinuousClock.now
                let tasks = try await client.awaitTasks([s.firstID])
                let t2 = ContinuousClock.now
                return (millis(t0.duration(to: t1)), millis(t0.duration(to: t2)), tasks[0])
            }
            guard task.state == "succeeded" else {
                out.notes.append("n=\(size): task \(task.id) \(task.state): \(task.reason)")
                continue
            }
            let r = task.result
            let a = task.attempts.last!
            let computeMs = Double(r.computeUs) / 1000
            let runMs = Double(r.generationUs + r.computeUs + r.verificationUs) / 1000
            let l = labels(("size", size), ("repetition", rep))
            let warm = rep < context.warmups
            let at = Date().timeIntervalSince(started)
            out.add("submit_to_commit_ms", "ms", submitMs, l, warmup: warm, at: at)
            out.add("commit_to_assign_ms", "ms", Double(a.assignedAtMs) - Double(task.submittedAtMs), l, warmup: warm, at: at)
            out.add("assign_to_start_ms", "ms", Double(a.startedAtMs) - Double(a.assignedAtMs), l, warmup: warm, at: at)
            out.add("report_ms", "ms", max(0, Double(a.endedAtMs) - Double(a.startedAtMs) - runMs), l, warmup: warm, at: at)
            out.add("end_to_end_ms", "ms", e2eMs, l, warmup: warm, at: at)
            out.add("compute_ms", "ms", computeMs, l, warmup: warm, at: at)
            out.add("agent_run_ms", "ms", runMs, l, warmup: warm, at: at)
            out.add("gflops", "GFLOP/s", r.gflops, l, warmup: warm, at: at)
            out.add("overhead_pct", "%", (e2eMs - computeMs) / computeMs * 100, l, warmup: warm, at: at)
            out.add("orchestration_overhead_pct", "%", (e2eMs - runMs) / computeMs * 100, l, warmup: warm, at: at)
        }
    }
    // A stream of small submissions into a paused job (so that they queue, not run): the
    // latency from submission to commit, as clients see it.
    context.progress.step("overhead", "\(stream) submissions from \(streamClients) clients", done: done, total: total)
    let latencies = try await cluster.withClient { client -> [Double] in
        _ = try await client.withSession { id, seq in
            try await client.call {
                try await TasksClient(wrapping: $0).act(.with {
                    $0.clientID = id
                    $0.sequence = seq
                    $0.pauseJob = "latency-probe"
                })
            }
        }
        return try await withThrowingTaskGroup(of: [Double].self) { group in
            for c in 0..<streamClients {
                group.addTask {
                    var samples: [Double] = []
                    for k in stride(from: c, to: stream, by: streamClients) {
                        let t0 = ContinuousClock.now
                        _ = try await client.withSession { id, seq in
                            let request = Flotilla_V1_SubmitRequest.with {
                                $0.clientID = id
                                $0.sequence = seq
                                $0.spec = .with {
                                    $0.size = 8
                                    $0.seed = UInt64(k)
                                    $0.job = "latency-probe"
                                }
                            }
                            return try await client.call { try await TasksClient(wrapping: $0).submit(request) }
                        }
                        samples.append(millis(t0.duration(to: .now)))
                    }
                    return samples
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
    }
    let warm = min(latencies.count / 10, 50)
    for (k, v) in latencies.enumerated() {
        out.add("stream_submit_to_commit_ms", "ms", v, labels(("clients", streamClients)), warmup: k < warm)
    }
    context.progress.step("overhead", "done", done: total, total: total)
    return out
    }
}

// MARK: - scaling

/// Throughput with 1..N agents on the same tasks; speedup and efficiency come from the medians.
func runScaling(nodes: Int, agentCounts: [Int], size: Int, tasksPerAgent: Int, context: PhaseContext) async throws -> PhaseOutput {
    var out = PhaseOutput()
    var scheduler = SchedulerConfig()
    scheduler.heartbeatInterval = 500
    scheduler.deadAfter = 10_000
    return try await withBenchCluster(nodes: nodes, dir: context.workDirectory + "/scaling", scheduler: scheduler, context: context) { cluster in
    out.clusterConfig = cluster.config.yaml
    let cores = CPUInfo.logicalCores
    let rounds = context.warmups + context.repeats
    let total = agentCounts.count * rounds
    var done = 0
    var running: [String] = []
    var seed: UInt64 = 1
    for k in agentCounts.sorted() {
        let wanted = (1...k).map { "a\($0)" }
        let toStart = wanted.filter { !running.contains($0) }
        try await cluster.startAgents(toStart, extraArguments: context.agentArguments)
        running += toStart
        let extra = running.filter { !wanted.contains($0) }
        await cluster.stopAgents(extra)
        running = wanted
        for round in 0..<rounds {
            context.progress.step("scaling", "\(k) agent\(k == 1 ? "" : "s"), round \(round + 1)/\(rounds)", done: done, total: total)
            done += 1
            let count = UInt32(k * tasksPerAgent)
            let (elapsed, tasks) = try await cluster.withClient { [seed] client in
                let t0 = ContinuousClock.now
                let s = try await client.submitMatmul(size: UInt32(size), count: count, seed: seed)
                let tasks = try await client.awaitTasks((0..<UInt64(s.count)).map { s.firstID + $0 })
                return (millis(t0.duration(to: .now)) / 1000, tasks)
            }
            seed += UInt64(count)
            let failed = tasks.filter { $0.state != "succeeded" }.count
            if failed > 0 { out.notes.append("\(k) agents, round \(round + 1): \(failed) tasks did not succeed") }
            let l = labels(("agents", k), ("cores", cores), ("oversubscribed", k > cores), ("size", size))
            out.add("throughput_tasks_per_s", "tasks/s", Double(tasks.count - failed) / elapsed, l, warmup: round < context.warmups)
            out.add("batch_seconds", "s", elapsed, l, warmup: round < context.warmups)
            let gflops = tasks.filter { $0.state == "succeeded" }.map(\.result.gflops)
            if !gflops.isEmpty {
                out.add("mean_task_gflops", "GFLOP/s", gflops.reduce(0, +) / Double(gflops.count), l, warmup: round < context.warmups)
            }
        }
    }
    context.progress.step("scaling", "done", done: total, total: total)
    return out
    }
}

// MARK: - failover

enum FailoverVictim: String, Sendable, CaseIterable { case leader, agent }

/// Under a steady task load, SIGKILL the leader (or an agent running a task) and time the recovery;
/// count tasks lost or recorded twice (must be 0). The victim is restarted between trials.
func runFailover(nodes: Int, agents: Int, trials: Int, size: Int, victim: FailoverVictim, context: PhaseContext) async throws -> PhaseOutput {
    var out = PhaseOutput()
    var scheduler = SchedulerConfig()
    scheduler.heartbeatInterval = 250
    scheduler.deadAfter = 1_500
    return try await withBenchCluster(nodes: nodes, dir: context.workDirectory + "/failover", scheduler: scheduler, context: context) { cluster in
    out.clusterConfig = cluster.config.yaml
    let agentIDs = (1...agents).map { "a\($0)" }
    try await cluster.startAgents(agentIDs, extraArguments: context.agentArguments)
    var acknowledged: [UInt64] = []
    for trial in 1...trials {
        context.progress.step("failover", "trial \(trial)/\(trials) (kill the \(victim.rawValue))", done: trial - 1, total: trials)
        let l = labels(("trial", trial), ("victim", victim.rawValue), ("nodes", nodes))
        // A steady load: a queue that outlasts the trial.
        let batch = UInt32(max(40, agents * 20))
        let submitted = try await cluster.withClient { try await $0.submitMatmul(size: UInt32(size), count: batch, seed: UInt64(trial * 100_000)) }
        var ids = (0..<UInt64(submitted.count)).map { submitted.firstID + $0 }
        // Steady state: completions for at least 2 s, measured to size the rest of the load.
        let rate = try await cluster.withClient { client -> Double in
            let deadline = Date().addingTimeInterval(120)
            var firstDone: Date?
            var doneThen = 0
            while Date() < deadline {
                let done = try await client.listTasks(after: submitted.firstID - 1, limit: batch).tasks.filter { $0.state == "succeeded" }.count
                if done > 0 && firstDone == nil { (firstDone, doneThen) = (Date(), done) }
                if let firstDone, Date().timeIntervalSince(firstDone) >= 2 {
                    return Double(done - doneThen) / Date().timeIntervalSince(firstDone)
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            throw BenchError("no steady load after 120 s")
        }
        // Enough queued work to run well past the kill (about 6 s at the steady rate).
        let more = UInt32(min(2_000, max(10, rate * 6)))
        let extra = try await cluster.withClient { try await $0.submitMatmul(size: UInt32(size), count: more, seed: UInt64(trial * 100_000 + 50_000)) }
        ids += (0..<UInt64(extra.count)).map { extra.firstID + $0 }
        acknowledged += ids
        guard let before = try await cluster.waitForLeader(seconds: 10) else { throw BenchError("no leader before trial \(trial)") }
        var killedNode: UInt64?
        var killedAgent: String?
        let killWall: UInt64
        let killed: ContinuousClock.Instant
        switch victim {
        case .leader:
            guard let pid = cluster.local.pid(before.id) else { throw BenchError("no pid for node \(before.id)") }
            killWall = wallClockMillis()
            killed = .now
            kill(pid, SIGKILL)
            killedNode = before.id
        case .agent:
            let running = try await cluster.withClient { try await $0.listTasks(after: submitted.firstID - 1, limit: batch) }.tasks
                .first { $0.state == "running" }
            guard let agent = running?.attempts.last?.agent, let pid = cluster.local.agentPid(agent) else {
                throw BenchError("trial \(trial): no running task to kill the agent of")
            }
            killWall = wallClockMillis()
            killed = .now
            kill(pid, SIGKILL)
            killedAgent = agent
        }
        // Time to a new leader, and to the first commit proposed after the kill.
        if let node = killedNode {
            async let elected: Double? = {
                try await cluster.waitForLeader(seconds: 30, excluding: node, newerThan: before.term) != nil
                    ? millis(killed.duration(to: .now)) : nil
            }()
            async let committed: Double = cluster.withClient { client in
                _ = try await client.propose(KeyValueStore.put(Array("probe-\(trial)".utf8), [1]))
                return millis(killed.duration(to: .now))
            }
            let (leaderMs, commitMs) = try await (elected, committed)
            if let leaderMs { out.add("new_leader_ms", "ms", leaderMs, l) } else { out.notes.append("trial \(trial): no new leader seen in 30 s") }
            out.add("first_commit_ms", "ms", commitMs, l)
        }
        // The batch finishes under the new leader (or without the dead agent).
        let trialIDs = ids
        let tasks = try await cluster.withClient { try await $0.awaitTasks(trialIDs, seconds: 300) }
        let attempts = tasks.flatMap(\.attempts)
        if let first = attempts.filter({ $0.outcome == "succeeded" && $0.endedAtMs > killWall }).map(\.endedAtMs).min() {
            out.add("first_completion_ms", "ms", Double(first) - Double(killWall), l)
        }
        if killedAgent != nil,
            let reassigned = tasks.filter({ $0.attempts.contains { $0.agent == killedAgent && $0.outcome == "abandoned" } })
                .compactMap({ $0.attempts.first { $0.assignedAtMs > killWall && $0.agent != killedAgent }?.assignedAtMs }).min()
        {
            out.add("reassignment_ms", "ms", Double(reassigned) - Double(killWall), l)
        }
        // Throughput timeline: completions per 250 ms around the kill.
        let ends = attempts.filter { $0.outcome == "succeeded" }.map { (Double($0.endedAtMs) - Double(killWall)) / 1000 }
        let bin = 0.25
        let lo = (ends.min() ?? 0).rounded(.down)
        let hi = ends.max() ?? 0
        var bins: [Double] = []
        var t = lo
        while t <= hi {
            let n = ends.filter { $0 >= t && $0 < t + bin }.count
            bins.append(Double(n) / bin)
            out.add("completions_per_s", "tasks/s", Double(n) / bin, l, at: t)
            t += bin
        }
        let beforeBins = zip(stride(from: lo, through: hi, by: bin), bins).filter { $0.0 < -bin }.map(\.1)
        let afterBins = zip(stride(from: lo, through: hi, by: bin), bins).filter { $0.0 >= 0 }
        if let steady = beforeBins.sorted().dropFirst(beforeBins.count / 2).first, steady > 0, !afterBins.isEmpty {
            let minAfter = afterBins.prefix(20).map(\.1).min() ?? steady
            out.add("throughput_dip_pct", "%", max(0, (steady - minAfter) / steady * 100), l)
            // Recovered: the first bin after the new leader back at 90 % of the rate before.
            let leaderAt = (out.measurements.last { $0.metric == "new_leader_ms" && $0.labels["trial"] == String(trial) }?.value ?? 0) / 1000
            if let back = afterBins.first(where: { $0.0 >= leaderAt && $0.1 >= 0.9 * steady }) {
                out.add("time_to_full_throughput_ms", "ms", back.0 * 1000, l)
            }
        }
        // Exactly once: every acknowledged task exists, ends succeeded, with one succeeded attempt.
        let lost = tasks.filter { $0.id == 0 || $0.state != "succeeded" }.count
        let twice = tasks.filter { t in t.attempts.filter { $0.outcome == "succeeded" }.count > 1 }.count
        out.add("tasks_lost", "tasks", Double(lost), l)
        out.add("tasks_completed_twice", "tasks", Double(twice), l)
        // Bring the victim back and let it settle before the next trial.
        if let node = killedNode { _ = try cluster.local.start(node) }
        if let agent = killedAgent { _ = try cluster.local.startAgent(agent) }
        try await cluster.waitForAgents(live: Set(agentIDs), seconds: 30)
        try await Task.sleep(for: .milliseconds(500))
    }
    // The whole run: nothing acknowledged lost or recorded twice, across every trial.
    let all = acknowledged
    let final = try await cluster.withClient { try await $0.awaitTasks(all, seconds: 300) }
    let lost = final.filter { $0.id == 0 || $0.state != "succeeded" }.count
    let twice = final.filter { t in t.attempts.filter { $0.outcome == "succeeded" }.count > 1 }.count
    out.add("run_tasks_lost", "tasks", Double(lost), labels(("victim", victim.rawValue)))
    out.add("run_tasks_completed_twice", "tasks", Double(twice), labels(("victim", victim.rawValue)))
    out.add("run_tasks_acknowledged", "tasks", Double(acknowledged.count), labels(("victim", victim.rawValue)))
    context.progress.step("failover", "done", done: trials, total: trials)
    if lost > 0 || twice > 0 {
        throw BenchError("failover: \(lost) acknowledged tasks lost and \(twice) recorded twice; the cluster's logs are kept in \(cluster.local.dir)")
    }
    return out
    }
}

/// Runs `body` on a fresh cluster in `dir`; takes it down afterwards (deleting the folder on
/// success unless `--keep-cluster`; keeping it, for its logs, on failure).
func withBenchCluster<T: Sendable>(
    nodes: Int, dir: String, scheduler: SchedulerConfig, context: PhaseContext, _ body: (BenchCluster) async throws -> T
) async throws -> T {
    let cluster = try await BenchCluster.start(nodes: nodes, dir: dir, scheduler: scheduler)
    do {
        let result = try await body(cluster)
        await cluster.stop(purge: !context.keepCluster)
        return result
    } catch {
        await cluster.stop(purge: false)
        context.progress.line("the cluster's logs are kept in \(dir)")
        throw error
    }
}
