import ControlPlane
import FlotillaProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Testing

/// Real `flotilla node` and `flotilla agent` processes on 127.0.0.1: tasks run end to end and
/// survive the death of the leader and of an agent; no task is lost or completed twice.
/// Small matrices keep them quick; each test bounds its waits and takes its cluster down.
@Suite(.serialized, .timeLimit(.minutes(4)))
struct AgentProcessTests {
    typealias P = ProcessClusterTests

    /// A cluster with agents; short heartbeats so that a dead agent is noticed in seconds.
    static func withAgents(
        nodes: Int = 3, agents: Int, agentDelayMs: Int = 0, deadAfter: Double = 1.5, _ body: (String, [String]) async throws -> Void
    ) async throws {
        let dir = NSTemporaryDirectory() + "flotilla-at-\(UUID().uuidString.prefix(8))"
        var args = ["cluster", "up", "--nodes", String(nodes), "--agents", String(agents), "--dir", dir, "--heartbeat", "0.2", "--dead-after", String(deadAfter)]
        if agentDelayMs > 0 { args += ["--agent-delay-ms", String(agentDelayMs)] }
        try await withCleanup {
            let up = try await P.flotilla(args)
            try #require(up.status == 0, "cluster up failed: \(up.output)")
            let config = try ClusterConfig.parse(yaml: String(contentsOfFile: dir + "/cluster.yaml", encoding: .utf8))
            try await P.withLogsOnFailure(dir) { try await body(dir, config.nodes.map(\.address)) }
        } cleanup: {
            _ = try? await P.flotilla(["cluster", "down", "--dir", dir, "--purge"])
        }
    }

    static func submit(_ client: ClusterClient, size: UInt32, count: UInt32, key: String = "", precision: String = "float32") async throws -> Flotilla_V1_SubmitResponse {
        try await client.withSession { id, sequence in
            let request = Flotilla_V1_SubmitRequest.with {
                $0.clientID = id
                $0.sequence = sequence
                $0.key = key
                $0.count = count
                $0.spec = .with {
                    $0.kind = "matmul"
                    $0.size = size
                    $0.precision = precision
                    $0.seed = 42
                    $0.threads = 1
                }
            }
            return try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).submit(request) }
        }
    }

    static func list(_ client: ClusterClient) async throws -> [Flotilla_V1_Task] {
        let request = Flotilla_V1_ListTasksRequest.with { $0.limit = 10_000 }
        return try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).listTasks(request) }.tasks
    }

    static func task(_ client: ClusterClient, _ id: UInt64) async throws -> Flotilla_V1_Task {
        let request = Flotilla_V1_GetTaskRequest.with { $0.id = id }
        return try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).getTask(request) }
    }

    static let terminal: Set<String> = ["succeeded", "failed", "cancelled"]

    /// Polls task `id` until it is in `state` (or `seconds` pass); returns it as last seen.
    static func waitFor(_ client: ClusterClient, task id: UInt64, state: String, seconds: Double = 30) async throws -> Flotilla_V1_Task {
        let deadline = Date().addingTimeInterval(seconds)
        var t = try await task(client, id)
        while t.state != state && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
            t = try await task(client, id)
        }
        return t
    }

    /// The pid of local agent `id`, from its folder.
    static func agentPID(_ dir: String, _ id: String) throws -> Int32 {
        let text = try String(contentsOfFile: "\(dir)/agents/\(id)/agent.pid", encoding: .utf8)
        return try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// Polls until every task is terminal (or `seconds` pass); returns the tasks.
    static func waitForAll(_ client: ClusterClient, expected: Int, seconds: Double = 120) async throws -> [Flotilla_V1_Task] {
        let deadline = Date().addingTimeInterval(seconds)
        var tasks: [Flotilla_V1_Task] = []
        while Date() < deadline {
            tasks = (try? await list(client)) ?? tasks
            if tasks.count == expected && tasks.allSatisfy({ terminal.contains($0.state) }) { return tasks }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("tasks not finished in \(seconds) s: \(tasks.map { "\($0.id):\($0.state)" })")
        return tasks
    }

    /// The exactly-once property: one succeeded attempt per succeeded task, none for the others,
    /// and at most one active attempt.
    static func expectRecordedOnce(_ tasks: [Flotilla_V1_Task]) {
        for t in tasks {
            let succeeded = t.attempts.filter { $0.outcome == "succeeded" }.count
            #expect(succeeded == (t.state == "succeeded" ? 1 : 0), "task \(t.id): \(succeeded) succeeded attempts, state \(t.state)")
            #expect(t.attempts.filter { $0.outcome == "active" }.count <= (terminal.contains(t.state) ? 0 : 1))
        }
    }

    @Test func tasksCompleteWithVerifiedResultsAndDuplicatesReturnTheSameTasks() async throws {
        try await Self.withAgents(agents: 2) { dir, addresses in
            // Through the CLI, as a user would: --wait --verify recomputes every fingerprint.
            let run = try await P.flotilla(["submit", "matmul", "--size", "200", "--count", "6", "--key", "batch-1", "--wait", "--verify", "--dir", dir], timeout: 120)
            #expect(run.status == 0, "\(run.output)")
            #expect(run.output.contains("6 match, 0 differ"), "\(run.output)")
            try await ClusterClient.withCluster(addresses, timeout: .seconds(30)) { client in
                // The same key again, from another client: the same tasks, nothing new.
                let again = try await Self.submit(client, size: 999, count: 6, key: "batch-1")
                #expect(again.existing && again.firstID == 1 && again.count == 6)
                let tasks = try await Self.list(client)
                #expect(tasks.count == 6)
                #expect(tasks.allSatisfy { $0.state == "succeeded" && $0.result.verified && $0.result.gflops > 0 })
                #expect(Set(tasks.map(\.spec.seed)).count == 6)
                Self.expectRecordedOnce(tasks)
                // Both agents registered and worked.
                let agents = try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).listAgents(Flotilla_V1_ListAgentsRequest()) }
                #expect(agents.agents.map(\.id) == ["a1", "a2"])
                #expect(agents.agents.allSatisfy { $0.state == "live" && $0.info.contains("openblas") })
            }
        }
    }

    @Test func tasksSurviveSIGKILLOfTheLeader() async throws {
        try await Self.withAgents(agents: 3, agentDelayMs: 150) { dir, addresses in
            try await ClusterClient.withCluster(addresses, timeout: .seconds(30)) { client in
                let first = try await Self.submit(client, size: 128, count: 30)
                #expect(first.count == 30)
                // Kill the leader once some tasks are done and others run.
                let deadline = Date().addingTimeInterval(60)
                while Date() < deadline, try await Self.list(client).filter({ $0.state == "succeeded" }).count < 5 {
                    try await Task.sleep(for: .milliseconds(50))
                }
                let leader = try await P.leader(addresses)
                kill(try #require(P.pid(dir, Int(leader))), SIGKILL)
                // More work submitted across the failover, retried by the client until a new leader takes it.
                let second = try await Self.submit(client, size: 128, count: 10, key: "after-kill")
                #expect(second.firstID == 31)
                let tasks = try await Self.waitForAll(client, expected: 40)
                #expect(tasks.filter { $0.state == "succeeded" }.count == 40)
                Self.expectRecordedOnce(tasks)
                #expect(try await P.leader(addresses) != leader)
            }
        }
    }

    @Test func aTaskOfAKilledAgentIsRerunElsewhere() async throws {
        try await Self.withAgents(agents: 2, agentDelayMs: 4_000) { dir, addresses in
            try await ClusterClient.withCluster(addresses, timeout: .seconds(30)) { client in
                let submitted = try await Self.submit(client, size: 64, count: 1)
                // Wait until an agent started it, then SIGKILL that agent mid-task.
                let started = try await Self.waitFor(client, task: submitted.firstID, state: "running")
                let victim = try #require(started.state == "running" ? started.attempts.last?.agent : nil, "the task never started")
                kill(try Self.agentPID(dir, victim), SIGKILL)
                let tasks = try await Self.waitForAll(client, expected: 1, seconds: 60)
                let t = try #require(tasks.first)
                #expect(t.state == "succeeded")
                #expect(t.attempts.count >= 2)
                #expect(t.attempts.first?.agent == victim && t.attempts.first?.outcome == "abandoned")
                #expect(t.attempts.last?.agent != victim && t.attempts.last?.outcome == "succeeded")
                Self.expectRecordedOnce(tasks)
                // The dead agent is reported as such.
                let agents = try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).listAgents(Flotilla_V1_ListAgentsRequest()) }
                #expect(agents.agents.first { $0.id == victim }?.state == "dead")
                // Restarted, it registers again as a new incarnation and is live.
                #expect(try await P.flotilla(["cluster", "restart-agent", victim, "--dir", dir]).status == 0)
                var live = false
                for _ in 0..<100 where !live {
                    let a = try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).listAgents(Flotilla_V1_ListAgentsRequest()) }
                    live = a.agents.first { $0.id == victim }?.state == "live"
                    if !live { try await Task.sleep(for: .milliseconds(100)) }
                }
                #expect(live)
            }
        }
    }

    /// SIGTERM: the agent leaves, and the leader puts its running task back in the queue at once.
    /// dead_after is a minute here: the task finishing elsewhere within the wait shows that the
    /// agent left rather than being declared dead.
    @Test func anAgentStoppedWithSIGTERMLeavesAndItsTaskRunsElsewhere() async throws {
        try await Self.withAgents(agents: 2, agentDelayMs: 4_000, deadAfter: 60) { dir, addresses in
            try await ClusterClient.withCluster(addresses, timeout: .seconds(30)) { client in
                let submitted = try await Self.submit(client, size: 64, count: 1)
                let started = try await Self.waitFor(client, task: submitted.firstID, state: "running")
                let victim = try #require(started.state == "running" ? started.attempts.last?.agent : nil, "the task never started")
                kill(try Self.agentPID(dir, victim), SIGTERM)
                let tasks = try await Self.waitForAll(client, expected: 1, seconds: 40)
                let t = try #require(tasks.first)
                #expect(t.state == "succeeded")
                #expect(t.attempts.first?.agent == victim && t.attempts.first?.outcome == "abandoned")
                #expect(t.attempts.first?.reason.contains("left") == true, "\(t.attempts)")
                #expect(t.attempts.last?.agent != victim && t.attempts.last?.outcome == "succeeded")
                Self.expectRecordedOnce(tasks)
                let agents = try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).listAgents(Flotilla_V1_ListAgentsRequest()) }
                #expect(agents.agents.first { $0.id == victim }?.state == "left")
                let log = try String(contentsOfFile: "\(dir)/agents/\(victim)/agent.log", encoding: .utf8)
                #expect(log.contains("left the cluster; 1 running attempt went back to the queue"), "\(log)")
            }
        }
    }

    /// SIGTERM with `--drain-timeout`: the agent finishes and reports its running task, takes no
    /// new one meanwhile (a task submitted while it drains stays pending: it is the only agent),
    /// then leaves.
    @Test func aDrainingAgentFinishesItsTaskTakesNoNewOneAndLeaves() async throws {
        try await Self.withAgents(agents: 0, deadAfter: 60) { dir, addresses in
            let log = dir + "/d1.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            defer { try? output.close() }
            let agent = Process()
            agent.executableURL = URL(fileURLWithPath: P.executable)
            agent.arguments = ["agent", "--id", "d1", "--dir", dir, "--drain-timeout", "30", "--inject-delay-ms", "3000"]
            agent.standardOutput = output
            agent.standardError = output
            try agent.run()
            defer { kill(agent.processIdentifier, SIGKILL) }
            try await ClusterClient.withCluster(addresses, timeout: .seconds(30)) { client in
                let first = try await Self.submit(client, size: 64, count: 1)
                try #require(try await Self.waitFor(client, task: first.firstID, state: "running").state == "running", "the task never started")
                kill(agent.processIdentifier, SIGTERM)
                func agentState() async throws -> String {
                    let a = try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).listAgents(Flotilla_V1_ListAgentsRequest()) }
                    return a.agents.first { $0.id == "d1" }?.state ?? ""
                }
                var state = ""
                for _ in 0..<200 where state != "draining" && state != "left" {
                    state = try await agentState()
                    if state != "draining" { try await Task.sleep(for: .milliseconds(25)) }
                }
                #expect(state == "draining")
                let second = try await Self.submit(client, size: 64, count: 1, key: "during-drain")
                for _ in 0..<400 where state != "left" {
                    try await Task.sleep(for: .milliseconds(100))
                    state = try await agentState()
                }
                #expect(state == "left")
                let t1 = try await Self.task(client, first.firstID)
                #expect(t1.state == "succeeded" && t1.attempts.count == 1 && t1.attempts.first?.agent == "d1", "\(t1.attempts)")
                let t2 = try await Self.task(client, second.firstID)
                #expect(t2.state == "pending" && t2.attempts.isEmpty, "\(t2.state) \(t2.attempts)")
            }
            for _ in 0..<100 where agent.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            #expect(!agent.isRunning)
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            #expect(text.contains("drained: every running attempt finished and was reported"), "\(text)")
            #expect(text.contains("left the cluster; 0 running attempts went back to the queue"), "\(text)")
        }
    }

    /// `flotilla job pause`: the job's tasks are not placed, though agents are idle; after
    /// `flotilla job resume` they run.
    @Test func aPausedJobWaitsAndRunsOnceResumed() async throws {
        try await Self.withAgents(agents: 1) { dir, addresses in
            let paused = try await P.flotilla(["job", "pause", "nightly", "--dir", dir])
            #expect(paused.status == 0 && paused.output.contains("job nightly paused"), "\(paused.output)")
            let submitted = try await P.flotilla(["submit", "matmul", "--size", "64", "--count", "3", "--job", "nightly", "--dir", dir])
            #expect(submitted.status == 0, "\(submitted.output)")
            try await ClusterClient.withCluster(addresses, timeout: .seconds(30)) { client in
                // Other work runs meanwhile: the agent is there and idle.
                let other = try await Self.submit(client, size: 64, count: 1)
                #expect(try await Self.waitFor(client, task: other.firstID, state: "succeeded", seconds: 60).state == "succeeded")
                let waiting = try await Self.list(client).filter { $0.spec.job == "nightly" }
                #expect(waiting.count == 3 && waiting.allSatisfy { $0.state == "pending" && $0.attempts.isEmpty }, "\(waiting.map(\.state))")
                let resumed = try await P.flotilla(["job", "resume", "nightly", "--dir", dir])
                #expect(resumed.status == 0, "\(resumed.output)")
                let tasks = try await Self.waitForAll(client, expected: 4, seconds: 60)
                #expect(tasks.allSatisfy { $0.state == "succeeded" })
            }
        }
    }

    @Test func aTaskThatAlwaysFailsEndsFailedAfterThreeAttempts() async throws {
        try await Self.withAgents(agents: 2) { dir, addresses in
            try await ClusterClient.withCluster(addresses, timeout: .seconds(30)) { client in
                // 3 × 60000² float64 is 86 GB: every agent refuses it before allocating anything.
                let submitted = try await Self.submit(client, size: 60_000, count: 1, precision: "float64")
                let tasks = try await Self.waitForAll(client, expected: 1, seconds: 60)
                let t = try #require(tasks.first)
                #expect(t.id == submitted.firstID)
                #expect(t.state == "failed")
                #expect(t.attempts.count == 3)
                #expect(t.attempts.allSatisfy { $0.outcome == "failed" && $0.reason.contains("memory") })
                #expect(t.reason.contains("3 attempts"))
                Self.expectRecordedOnce(tasks)
            }
            // The CLI shows it, and exits non-zero for a failed task when waiting.
            let shown = try await P.flotilla(["task", "1", "--dir", dir])
            #expect(shown.status == 0 && shown.output.contains("failed"))
        }
    }
}
