import ArgumentParser
import ControlPlane
import FlotillaProto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Kernels
import Manifest
import SwiftProtobuf

private func tasksClient(_ grpc: GRPCClient<HTTP2ClientTransport.Posix>) -> Flotilla_V1_Tasks.Client<HTTP2ClientTransport.Posix> {
    Flotilla_V1_Tasks.Client(wrapping: grpc)
}

/// Prints a protobuf message as JSON (proto3's JSON mapping: field names in lowerCamelCase).
func printJSON(_ message: some SwiftProtobuf.Message) throws {
    var options = JSONEncodingOptions()
    options.alwaysPrintEnumsAsInts = false
    print(try message.jsonString(options: options))
}

func formatMillis(_ ms: UInt64) -> String {
    guard ms > 0 else { return "-" }
    let f = DateFormatter()
    f.dateFormat = "HH:mm:ss.SSS"
    return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

/// `flotilla submit matmul --size 4096`: submits tasks, optionally waits for them.
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit",
        abstract: "Submit tasks to the cluster.",
        discussion: """
            Example: flotilla submit matmul --size 4096 --count 8 --wait. A retried submission is \
            applied once; with --key, submitting again (even from another client) returns the \
            tasks the key created first.
            """)

    @Argument(help: "The task kind (matmul).")
    var kind: String

    @Option(help: "Matrix dimension n (two n×n matrices are multiplied).")
    var size: UInt32

    @Option(help: "How many tasks (seeds seed, seed+1, ...).")
    var count: UInt32 = 1

    @Option(help: "float32 (sgemm) or float64 (dgemm).")
    var precision = "float32"

    @Option(help: "Seed of the matrices.")
    var seed: UInt64 = 1

    @Option(help: "BLAS threads on the agent (0: OpenBLAS's default).")
    var threads: UInt32 = 1

    @Option(help: "Zone to prefer.")
    var zone = ""

    @Option(help: "Job name (jobs can be paused and resumed).")
    var job = ""

    @Option(help: "Idempotency key.")
    var key = ""

    @Option(help: "Seconds an attempt may run before it is failed and re-queued (0: the cluster's default).")
    var timeout: Double = 0

    @Option(help: "Attempts before the task fails for good.")
    var maxAttempts: UInt32 = 3

    @Flag(help: "Wait until every task has finished, then print them.")
    var wait = false

    @Flag(help: "With --wait: recompute each result's fingerprint here (O(n²) per task) and compare.")
    var verify = false

    @Option(help: "With --wait: give up after this many seconds.")
    var waitTimeout: Double = 3600

    @Flag(help: "Print JSON for scripts.")
    var json = false

    @OptionGroup var location: ClusterLocation

    func validate() throws {
        guard TaskKind(name: kind) != nil else { throw ValidationError("<kind> must be one of matmul, not '\(kind)'") }
        try checkChoice(precision, "--precision", ["float32", "float64", "f32", "f64", "single", "double"])  // TaskPrecision(name:)
        try checkRange(size, "--size", 1...TaskSpec.maxSize)
        try checkRange(count, "--count", 1...RequestLimits.tasksPerSubmission)
        // The cluster refuses more than 1024 BLAS threads (0: OpenBLAS's default).
        try checkRange(threads, "--threads", 0...1024)
        // The cluster's limit (7 days); seconds become whole milliseconds in the request.
        try checkRange(timeout, "--timeout", 0...Double(RequestLimits.taskTimeoutMillis / 1000), unit: "seconds")
        try checkRange(maxAttempts, "--max-attempts", 1...100)
        try checkRange(waitTimeout, "--wait-timeout", 0...2_592_000, unit: "seconds")
        // The cluster refuses longer names and keys.
        try checkLength(zone, "--zone", 0...RequestLimits.nameBytes)
        try checkLength(job, "--job", 0...RequestLimits.nameBytes)
        try checkLength(key, "--key", 0...RequestLimits.keyBytes)
        if verify && !wait { throw ValidationError("--verify needs --wait") }
    }

    func run() async throws {
        let spec = Flotilla_V1_TaskSpec.with {
            $0.kind = kind
            $0.size = size
            $0.precision = precision
            $0.seed = seed
            $0.threads = threads
            $0.zone = zone
            $0.job = job
            $0.timeoutMs = UInt64(timeout * 1000)
            $0.maxAttempts = maxAttempts
        }
        let addresses = try location.addresses()
        let (submitted, tasks) = try await ClusterClient.withCluster(addresses) { client in
            let response = try await client.withSession { clientID, sequence in
                let request = Flotilla_V1_SubmitRequest.with {
                    $0.clientID = clientID
                    $0.sequence = sequence
                    $0.key = key
                    $0.spec = spec
                    $0.count = count
                }
                return try await client.call { try await tasksClient($0).submit(request) }
            }
            guard wait else { return (response, [Flotilla_V1_Task]()) }
            return (response, try await waitFor(client, first: response.firstID, count: response.count))
        }
        let ids = "\(submitted.firstID)" + (submitted.count > 1 ? "-\(submitted.firstID + UInt64(submitted.count) - 1)" : "")
        if json && !wait {
            try printJSON(submitted)
            return
        }
        if !json {
            print("\(submitted.existing ? "already submitted (key \(key))" : "submitted"): task\(submitted.count == 1 ? "" : "s") \(ids)")
        }
        guard wait else { return }
        var failed = 0
        var mismatched = 0
        for t in tasks where t.state != "succeeded" { failed += 1 }
        if verify {
            for t in tasks where t.state == "succeeded" {
                let p = MatmulParameters(
                    size: Int(t.spec.size), precision: t.spec.precision == "float64" ? .float64 : .float32, seed: t.spec.seed)
                if !fingerprintMatches(t.result.fingerprint, expected: expectedFingerprint(p), size: p.size, precision: p.precision) {
                    mismatched += 1
                    print("task \(t.id): fingerprint \(t.result.fingerprint) does not match the recomputed value")
                }
            }
        }
        if json {
            try printJSON(Flotilla_V1_ListTasksResponse.with { $0.tasks = tasks })
        } else {
            printTaskTable(tasks)
            if verify { print("fingerprints recomputed here: \(tasks.count - failed - mismatched) match, \(mismatched) differ") }
        }
        if failed > 0 || mismatched > 0 { throw ExitCode(1) }
    }

    private func waitFor(_ client: ClusterClient, first: UInt64, count: UInt32) async throws -> [Flotilla_V1_Task] {
        let deadline = ContinuousClock.now.advanced(by: .seconds(waitTimeout))
        let ids = (0..<UInt64(count)).map { first + $0 }
        while true {
            let left = milliseconds(ContinuousClock.now.duration(to: deadline))
            let request = Flotilla_V1_AwaitTasksRequest.with {
                $0.ids = ids
                $0.timeoutMs = UInt64(max(1, min(left, 30_000)))
            }
            let response = try await client.call(timeout: .seconds(60), hedged: false) { try await tasksClient($0).awaitTasks(request) }
            if response.complete { return response.tasks }
            guard ContinuousClock.now < deadline else {
                let open = response.tasks.filter { !["succeeded", "failed", "cancelled"].contains($0.state) }.count
                throw CLIError("gave up waiting after \(waitTimeout) s: \(open) tasks unfinished")
            }
        }
    }
}

func fingerprintMatches(_ fingerprint: Double, expected: Double, size: Int, precision: Precision) -> Bool {
    let outcome = MatmulOutcome(
        size: size, precision: precision, seed: 0, threads: 0, generationSeconds: 0, computeSeconds: 0, verificationSeconds: 0,
        gflops: 0, verified: true, fingerprint: fingerprint, kernel: "")
    return Kernels.fingerprintMatches(outcome, expected: expected)
}

func printTaskTable(_ tasks: [Flotilla_V1_Task]) {
    var rows = [["ID", "STATE", "SIZE", "PREC", "ATTEMPTS", "AGENT", "COMPUTE", "GFLOP/S", "VERIFIED", "KERNEL", "REASON"]]
    for t in tasks {
        let done = t.state == "succeeded"
        rows.append([
            String(t.id), t.state, String(t.spec.size), t.spec.precision, String(t.attempts.count), t.attempts.last?.agent ?? "-",
            done ? String(format: "%.3f s", Double(t.result.computeUs) / 1e6) : "-",
            done ? String(format: "%.1f", t.result.gflops) : "-",
            done ? (t.result.verified ? "yes" : "NO") : "-",
            done ? t.result.kernel : "-",
            String(t.reason.prefix(60)),
        ])
    }
    printTable(rows)
}

/// `flotilla tasks`: the manifest's tasks.
struct TasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tasks", abstract: "List tasks, with counts per state.")

    @Option(help: "Only tasks in this state (pending, assigned, running, succeeded, failed, cancelled).")
    var state: String?

    @Option(help: "At most this many tasks.")
    var limit: UInt32 = 100

    @Option(help: "Start after this task id.")
    var after: UInt64 = 0

    @Flag(help: "Print JSON for scripts.")
    var json = false

    @OptionGroup var location: ClusterLocation

    func validate() throws {
        try checkChoice(state, "--state", TaskState.allCases.map(\.description))
        // The cluster returns at most 100000 tasks per call (and 1000 for 0).
        try checkRange(limit, "--limit", 1...RequestLimits.listPage)
    }

    func run() async throws {
        let request = Flotilla_V1_ListTasksRequest.with {
            $0.state = state ?? ""
            $0.limit = limit
            $0.afterID = after
        }
        let response = try await ClusterClient.withCluster(try location.addresses()) { client in
            try await client.call { try await tasksClient($0).listTasks(request) }
        }
        if json {
            try printJSON(response)
            return
        }
        printTaskTable(response.tasks)
        let counts = TaskState.allCases.compactMap { s in response.counts[s.description].map { "\(s): \($0)" } }
        print(counts.isEmpty ? "no tasks" : counts.joined(separator: ", "))
    }
}

/// `flotilla task ID`: one task with every attempt.
struct TaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "task", abstract: "Show one task: its spec, state, every attempt and its result; or cancel or retry it.")

    @Argument(help: "The task id.")
    var id: UInt64

    @Flag(help: "Cancel the task.")
    var cancel = false

    @Flag(help: "Send a failed or cancelled task back to pending with a fresh budget of attempts.")
    var retry = false

    @Flag(help: "Recompute the result's fingerprint here (O(n²)) and compare.")
    var verify = false

    @Flag(help: "Print JSON for scripts.")
    var json = false

    @OptionGroup var location: ClusterLocation

    func validate() throws {
        try checkRange(id, "<id>", 1...)  // task ids start at 1
        if cancel && retry { throw ValidationError("give --cancel or --retry, not both") }
    }

    func run() async throws {
        let task = try await ClusterClient.withCluster(try location.addresses()) { client -> Flotilla_V1_Task in
            if cancel || retry {
                let response = try await client.withSession { clientID, sequence in
                    let request = Flotilla_V1_ActionRequest.with {
                        $0.clientID = clientID
                        $0.sequence = sequence
                        if cancel { $0.cancel = id } else { $0.retry = id }
                    }
                    return try await client.call { try await tasksClient($0).act(request) }
                }
                if !response.changed { throw CLIError(response.message) }
            }
            let request = Flotilla_V1_GetTaskRequest.with { $0.id = id }
            return try await client.call { try await tasksClient($0).getTask(request) }
        }
        if json {
            try printJSON(task)
            return
        }
        let s = task.spec
        print("task \(task.id): \(task.state)\(task.reason.isEmpty ? "" : " (\(task.reason))")")
        print("  spec: \(s.kind) n=\(s.size) \(s.precision) seed=\(s.seed) threads=\(s.threads)"
            + (s.zone.isEmpty ? "" : " zone=\(s.zone)") + (s.job.isEmpty ? "" : " job=\(s.job)") + (task.key.isEmpty ? "" : " key=\(task.key)"))
        print("  submitted \(formatMillis(task.submittedAtMs)), ended \(formatMillis(task.endedAtMs))")
        var rows = [["ATTEMPT", "AGENT", "ASSIGNED", "STARTED", "ENDED", "OUTCOME"]]
        for a in task.attempts {
            rows.append([
                String(a.number), a.agent, formatMillis(a.assignedAtMs), formatMillis(a.startedAtMs), formatMillis(a.endedAtMs),
                a.outcome + (a.reason.isEmpty ? "" : ": \(a.reason)"),
            ])
        }
        if !task.attempts.isEmpty { printTable(rows) }
        if task.state == "succeeded" {
            let r = task.result
            print(String(format: "  result: %.1f GFLOP/s on %@ (%d thread%@); generation %.3f s, compute %.3f s, verification %.3f s; Freivalds %@; fingerprint %.17g",
                r.gflops, r.kernel, r.threads, r.threads == 1 ? "" : "s", Double(r.generationUs) / 1e6, Double(r.computeUs) / 1e6,
                Double(r.verificationUs) / 1e6, r.verified ? "passed" : "FAILED", r.fingerprint))
            if verify {
                let p = MatmulParameters(size: Int(s.size), precision: s.precision == "float64" ? .float64 : .float32, seed: s.seed)
                let expected = expectedFingerprint(p)
                let ok = fingerprintMatches(r.fingerprint, expected: expected, size: p.size, precision: p.precision)
                print(String(format: "  fingerprint recomputed here: %.17g: %@", expected, ok ? "matches" : "DOES NOT MATCH"))
                if !ok { throw ExitCode(1) }
            }
        }
    }
}

/// `flotilla agents`: every agent the manifest knows.
struct AgentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "agents", abstract: "List agents: zone, slots, work, liveness.")

    @Flag(help: "Print JSON for scripts.")
    var json = false

    @OptionGroup var location: ClusterLocation

    func run() async throws {
        let response = try await ClusterClient.withCluster(try location.addresses()) { client in
            try await client.call { try await Flotilla_V1_Tasks.Client(wrapping: $0).listAgents(Flotilla_V1_ListAgentsRequest()) }
        }
        if json {
            try printJSON(response)
            return
        }
        var rows = [["ID", "ZONE", "STATE", "SLOTS", "ACTIVE", "LAST HEARTBEAT", "SINCE", "INFO"]]
        for a in response.agents {
            rows.append([
                a.id, a.zone, a.state + (a.reason.isEmpty ? "" : " (\(a.reason))"), String(a.slots), String(a.active),
                formatMillis(a.lastHeartbeatMs), formatMillis(a.sinceMs), a.info,
            ])
        }
        printTable(rows)
        if response.agents.isEmpty { print("no agents have registered") }
    }
}
