import ControlPlane
import Foundation
import FlotillaProto
import GRPCCore
import GRPCNIOTransportHTTP2
import Kernels
public import Manifest
import Synchronization

/// How an agent runs.
public struct AgentOptions: Sendable {
    public var id: AgentID
    public var zone: String
    public var slots: Int
    /// The control plane's client addresses (host:port); the agent finds the leader among them.
    public var controlPlane: [String]
    /// New for every process start: tells the leader that the work of an earlier process is gone.
    public var incarnation: UInt64 = UInt64.random(in: 1 ... .max)
    /// Shown by `flotilla agents` (kernel, threads).
    public var info: String = ""
    /// For tests and `bench compare`'s demonstration: added to every task's run time.
    public var injectedDelay: Duration = .zero
    /// Where the agent says what happens to it: registrations, leader changes, failed tasks,
    /// reports the leader refused.
    public var log: @Sendable (String) -> Void = { _ in }

    public init(id: AgentID, zone: String, slots: Int, controlPlane: [String]) {
        self.id = id
        self.zone = zone
        self.slots = slots
        self.controlPlane = controlPlane
    }
}

/// What running one attempt produced.
public enum TaskOutcome: Sendable, Hashable {
    case completed(TaskResult)
    case failed(String)
}

/// Runs one task (blocking is fine: each runs on its own thread).
public typealias TaskExecutor = @Sendable (TaskSpec) -> TaskOutcome

/// A node agent: registers with the leader, heartbeats, receives assignments over a server stream,
/// runs them, and reports results — to whichever node leads at the time.
///
/// Work outlives leaders: a task keeps running through a failover, and its result waits in the
/// agent's outbox until a leader records (or refuses) it. The agent finds a new leader by itself:
/// every call follows the `leader-address` hint of a follower's refusal, or tries the next node.
public final class AgentRuntime: Sendable {
    public let options: AgentOptions
    private let execute: TaskExecutor

    private struct Report: Sendable {
        var task: TaskID
        var attempt: UInt32
        var outcome: Flotilla_V1_ReportRequest.OneOf_Outcome
    }

    private struct State {
        /// Attempts received (running or done), so that a re-sent assignment is not run twice.
        var seen: Set<AttemptKey> = []
        var running: Set<AttemptKey> = []
        /// Attempts the leader says are no longer current: their results are dropped.
        var abandoned: Set<AttemptKey> = []
        var outbox: [Report] = []
        var heartbeatInterval: Duration = .seconds(1)
        var completed = 0
        /// Set by ``leave(timeout:)``: no new work, no heartbeats, no registering again.
        var leaving = false
        /// Set by ``drain(timeout:)``: registered with zero slots, so the leader sends no new work.
        var draining = false
    }

    struct AttemptKey: Hashable, Sendable {
        var task: TaskID
        var attempt: UInt32
    }

    private let state = Mutex(State())
    /// The cluster client of ``run()``, for ``leave(timeout:)``.
    private let client = Mutex<ClusterClient?>(nil)
    private let work: AsyncStream<(AttemptKey, TaskSpec)>.Continuation
    private let works: AsyncStream<(AttemptKey, TaskSpec)>
    private let outboxSignal: AsyncStream<Void>.Continuation
    private let outboxSignals: AsyncStream<Void>

    public init(options: AgentOptions, execute: @escaping TaskExecutor) {
        self.options = options
        self.execute = execute
        (works, work) = AsyncStream.makeStream(of: (AttemptKey, TaskSpec).self)
        (outboxSignals, outboxSignal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Tasks this agent finished (succeeded or failed) since it started.
    public var completedCount: Int { state.withLock { $0.completed } }

    private var isLeaving: Bool { state.withLock { $0.leaving } }

    /// Drains (before ``leave(timeout:)``, on SIGTERM with `--drain-timeout`): registers again
    /// with zero slots so that the leader assigns nothing more, then waits until every running
    /// attempt has finished and its report has been delivered, or `timeout` passes. Returns
    /// whether everything finished; what did not goes back to the queue when the agent leaves.
    @discardableResult
    public func drain(timeout: Duration) async -> Bool {
        state.withLock { $0.draining = true }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        let running = state.withLock { $0.running.count }
        options.log("draining: no new work; waiting up to \(timeout) for \(running) running attempt\(running == 1 ? "" : "s")")
        if let client = client.withLock({ $0 }) {
            let request = registerRequest
            do {
                _ = try await client.call(timeout: .seconds(3)) { try await self.agents($0).register(request) }
            } catch {
                options.log("could not tell the leader that this agent drains (\(error)); it may still be sent work")
            }
        }
        while clock.now < deadline {
            let idle = state.withLock { $0.running.isEmpty && $0.outbox.isEmpty }
            if idle {
                options.log("drained: every running attempt finished and was reported")
                return true
            }
            try? await Task.sleep(for: .milliseconds(50))
        }
        let left = state.withLock { $0.running.count }
        options.log("drain timed out with \(left) attempt\(left == 1 ? "" : "s") still running")
        return false
    }

    /// Leaves the cluster (on SIGTERM): takes no more work, stops heartbeating, and asks the
    /// leader to mark this agent left, which puts its running attempts back in the queue at once
    /// (their results, should they still come, are refused). If no leader answers within
    /// `timeout`, the agent will be declared dead after `dead_after` instead, with the same
    /// effect later. Returns what happened, for the log. Call while ``run()`` runs; then cancel it.
    @discardableResult
    public func leave(timeout: Duration = .seconds(3)) async -> String {
        state.withLock { $0.leaving = true }
        guard let client = client.withLock({ $0 }) else { return "left before reaching the control plane" }
        let request = Flotilla_V1_LeaveRequest.with {
            $0.agentID = options.id
            $0.incarnation = options.incarnation
        }
        let said: String
        do {
            let response = try await client.call(timeout: timeout) { try await self.agents($0).leave(request) }
            said = response.left
                ? "left the cluster; \(response.requeued) running attempt\(response.requeued == 1 ? "" : "s") went back to the queue"
                : "left; the leader no longer counted this agent as live"
        } catch {
            said = "could not tell the leader that this agent leaves (\(error)); it will be declared dead after dead_after"
        }
        options.log(said)
        return said
    }

    /// Runs until cancelled.
    public func run() async throws {
        try await ClusterClient.withCluster(options.controlPlane, timeout: .seconds(30), maxBackoff: .milliseconds(200)) { client in
            self.client.withLock { $0 = client }
            defer { self.client.withLock { $0 = nil } }
            await withDiscardingTaskGroup { group in
                group.addTask { await self.assignmentLoop(client) }
                group.addTask { await self.runLoop() }
                group.addTask { await self.heartbeatLoop(client) }
                group.addTask { await self.reportLoop(client) }
            }
        }
    }

    private var agents: (GRPCClient<HTTP2ClientTransport.Posix>) -> Flotilla_V1_Agents.Client<HTTP2ClientTransport.Posix> {
        { Flotilla_V1_Agents.Client(wrapping: $0) }
    }

    private var registerRequest: Flotilla_V1_RegisterRequest {
        let draining = state.withLock { $0.draining }
        return .with {
            $0.agentID = options.id
            $0.zone = options.zone
            $0.slots = draining ? 0 : UInt32(options.slots)
            $0.incarnation = options.incarnation
            $0.info = options.info
        }
    }

    /// Register with the leader, then take its assignments until the stream ends; again, forever.
    private func assignmentLoop(_ client: ClusterClient) async {
        do {
            while !Task.isCancelled && !isLeaving {
                do {
                    try await client.call(timeout: .seconds(3600), hedged: false) { grpc in
                        if self.isLeaving { return }
                        let agents = self.agents(grpc)
                        let registered = try await agents.register(self.registerRequest)
                        self.state.withLock { $0.heartbeatInterval = .milliseconds(Int64(max(50, registered.heartbeatIntervalMs))) }
                        self.options.log("registered with the leader (incarnation \(self.options.incarnation)); taking its assignments")
                        let request = Flotilla_V1_AssignmentsRequest.with {
                            $0.agentID = self.options.id
                            $0.incarnation = self.options.incarnation
                        }
                        do {
                            try await agents.assignments(request) { response in
                                for try await assignment in response.messages {
                                    self.accept(assignment)
                                }
                            }
                            // The stream ended cleanly: this agent left, or the node stopped leading.
                            if self.isLeaving { return }
                            throw RPCError(code: .unavailable, message: "the assignment stream ended")
                        } catch {
                            if !Task.isCancelled && !self.isLeaving { self.options.log("lost the leader (\((error as? RPCError)?.message ?? "\(error)")); looking for the next one") }
                            throw error
                        }
                    }
                } catch {
                    if Task.isCancelled { break }
                    // Only after an hour of retries, or an answer retrying cannot change.
                    options.log("could not register with a leader (\(error)); trying again in a second")
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
        work.finish()
    }

    /// Runs each accepted attempt on its own thread; they outlive leader changes.
    private func runLoop() async {
        let execute = self.execute
        let delay = options.injectedDelay
        await withDiscardingTaskGroup { runs in
            for await (key, spec) in works {
                runs.addTask {
                    let outcome = await runOnThread(name: "task-\(key.task)") { () -> TaskOutcome in
                        if delay > .zero {
                            let c = delay.components
                            Thread.sleep(forTimeInterval: Double(c.seconds) + Double(c.attoseconds) / 1e18)
                        }
                        return execute(spec)
                    }
                    self.finish(key, outcome)
                }
            }
        }
    }

    private func accept(_ assignment: Flotilla_V1_Assignment) {
        let key = AttemptKey(task: assignment.taskID, attempt: assignment.attempt)
        let fresh = state.withLock { s -> Bool in
            guard !s.leaving, !s.seen.contains(key) else { return false }
            s.seen.insert(key)
            s.running.insert(key)
            return true
        }
        guard fresh else { return }
        let spec: TaskSpec
        do {
            spec = try TaskSpec(assignment.spec)
        } catch {
            finish(key, .failed("the agent cannot read the task: \(error)"))
            return
        }
        enqueue(Report(task: key.task, attempt: key.attempt, outcome: .started(true)))
        work.yield((key, spec))
    }

    private func finish(_ key: AttemptKey, _ outcome: TaskOutcome) {
        let drop = state.withLock { s -> Bool in
            s.running.remove(key)
            s.completed += 1
            return s.abandoned.contains(key)
        }
        guard !drop else { return }
        switch outcome {
        case .completed(let result): enqueue(Report(task: key.task, attempt: key.attempt, outcome: .completed(result.proto)))
        case .failed(let why):
            options.log("task \(key.task) attempt \(key.attempt) failed: \(why)")
            enqueue(Report(task: key.task, attempt: key.attempt, outcome: .failed(why)))
        }
    }

    private func enqueue(_ report: Report) {
        state.withLock { $0.outbox.append(report) }
        outboxSignal.yield()
    }

    /// Sends reports in order, each until a leader records or refuses it.
    private func reportLoop(_ client: ClusterClient) async {
        for await _ in outboxSignals {
            while let report = state.withLock({ $0.outbox.first }) {
                let request = Flotilla_V1_ReportRequest.with {
                    $0.agentID = options.id
                    $0.incarnation = options.incarnation
                    $0.taskID = report.task
                    $0.attempt = report.attempt
                    $0.outcome = report.outcome
                }
                do {
                    _ = try await client.call(timeout: .seconds(3600)) { try await self.agents($0).report(request) }
                } catch {
                    if Task.isCancelled { return }
                    // Not retryable (the leader judged the report malformed): drop it.
                    options.log("dropped the report of task \(report.task) attempt \(report.attempt): \(error)")
                }
                state.withLock { _ = $0.outbox.removeFirst() }
            }
        }
    }

    private func heartbeatLoop(_ client: ClusterClient) async {
        while !Task.isCancelled && !isLeaving {
            let (interval, running) = state.withLock { ($0.heartbeatInterval, Array($0.running)) }
            let request = Flotilla_V1_AgentHeartbeatRequest.with {
                $0.agentID = options.id
                $0.incarnation = options.incarnation
                $0.running = running.map { k in
                    .with {
                        $0.taskID = k.task
                        $0.attempt = k.attempt
                    }
                }
            }
            if let response = try? await client.call(timeout: interval, { try await self.agents($0).heartbeat(request) }) {
                if !response.abandon.isEmpty {
                    let fresh = state.withLock { s in
                        response.abandon.map { AttemptKey(task: $0.taskID, attempt: $0.attempt) }.filter { s.abandoned.insert($0).inserted }
                    }
                    for a in fresh { options.log("task \(a.task) attempt \(a.attempt) is no longer this agent's: its result will be dropped") }
                }
                if response.reregister && !isLeaving {
                    options.log("the leader does not know this agent as live (declared dead while unreachable?): registering again")
                    // E.g. this agent was declared dead while cut off: join again (its old attempts
                    // are already re-queued; their results will be refused).
                    _ = try? await client.call(timeout: interval) { try await self.agents($0).register(self.registerRequest) }
                }
            }
            try? await Task.sleep(for: interval)
        }
    }
}

/// Runs blocking work on a new thread (not Swift's cooperative pool, which BLAS would starve).
func runOnThread<T: Sendable>(name: String, _ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: work()) }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }
}
