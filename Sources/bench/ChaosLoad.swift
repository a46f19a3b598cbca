import BenchStatistics
import ChaosCheck
import ControlPlane
import FlotillaProto
import Foundation
import GRPCCore
import Synchronization

/// Every client operation of a chaos run, with invocation and completion times (seconds since the
/// run began), as the history checker wants them.
final class ChaosHistory: Sendable {
    let start = ContinuousClock.now
    /// Wall-clock milliseconds at `start` (the manifest's attempt times are wall clock).
    let startWallMs = wallClockMillis()
    private let state = Mutex<(ops: [ChaosCheck.Operation], acked: [UInt64])>(([], []))
    private let nextID = Atomic<Int>(0)

    func now() -> Double { secondsSince(start) }
    func wallMs(at t: Double) -> Double { Double(startWallMs) + t * 1000 }

    func record(client: Int, invokedAt: Double, completedAt: Double?, _ kind: OperationKind) {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let op = ChaosCheck.Operation(id: id, client: client, invokedAt: invokedAt, completedAt: completedAt, kind: kind)
        state.withLock { s in
            s.ops.append(op)
            if case .submit(_, _, .ok(let ids)) = kind { s.acked += ids }
        }
    }

    var operations: [ChaosCheck.Operation] { state.withLock { $0.ops }.sorted { $0.id < $1.id } }

    /// A task some submission acknowledged (for reads), chosen by `r` in 0..<1.
    func ackedTask(_ r: Double) -> UInt64? {
        state.withLock { s in s.acked.isEmpty ? nil : s.acked[min(s.acked.count - 1, Int(r * Double(s.acked.count)))] }
    }

    var ackedTasks: [UInt64] { state.withLock { $0.acked } }

    /// Completion times of the retrying clients' acknowledged submissions (the throughput the
    /// run reports; pinned and probe submissions excluded).
    var ackTimes: [Double] {
        state.withLock { s in
            s.ops.compactMap { op in
                if case .submit(let key, _, .ok) = op.kind, key.hasPrefix("c") { return op.completedAt }
                return nil
            }.sorted()
        }
    }

    /// Latencies (ms) of acknowledged submissions that went through the retrying client, invoked in [from, to).
    func submitLatencies(from: Double, to: Double) -> [Double] {
        state.withLock { s in
            s.ops.compactMap { op in
                guard case .submit(let key, _, .ok) = op.kind, key.hasPrefix("c"), let done = op.completedAt,
                    op.invokedAt >= from, op.invokedAt < to
                else { return nil }
                return (done - op.invokedAt) * 1000
            }
        }
    }
}

/// Tells the load clients to finish.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}

func secondsSince(_ start: ContinuousClock.Instant) -> Double { millis(start.duration(to: .now)) / 1000 }

/// The chaos run's seeded choices (BenchStatistics' SplitMix64).
struct ChaosRandom: Sendable {
    private var generator: SplitMix64
    init(seed: UInt64) { generator = SplitMix64(seed: seed) }
    mutating func next() -> UInt64 { generator.next() }
    mutating func unit() -> Double { generator.nextUnitDouble() }
    mutating func pick<T>(_ xs: [T]) -> T { xs[generator.nextIndex(below: xs.count)] }
}

private func callOptions(_ timeout: Duration) -> CallOptions {
    var o = CallOptions.defaults
    o.timeout = timeout
    return o
}

/// What a task looked like to the checker.
func observation(_ t: Flotilla_V1_Task) -> TaskObservation {
    let succeeded = t.attempts.filter { $0.outcome == "succeeded" }.count
    return TaskObservation(
        state: ChaosCheck.TaskState(rawValue: t.state) ?? .pending, attempts: t.attempts.count, succeededAttempts: succeeded,
        resultFingerprint: t.state == "succeeded" ? t.result.fingerprint : nil)
}

/// One load client, a closed loop recorded in `history`. A retrying client submits through the
/// cluster client (which follows the leader across failovers), re-submits keys that were
/// acknowledged (the same tasks must come back) or whose outcome was unknown (applied at most
/// once), and reads acknowledged tasks through any node. A pinned client sends each submission
/// and read to one node chosen at random, once, without retrying: a node cut off from the
/// majority, or a deposed leader, must then refuse, time out, or answer with fresh state.
/// (Pinned clients get their own loops, so that their waits on a stopped node do not slow the
/// retrying clients, whose acknowledgements are the throughput the run reports.)
func runChaosClient(
    _ c: Int, pinned: Bool, client: ClusterClient, history: ChaosHistory, size: UInt32, seed: UInt64, stop: StopFlag
) async {
    var rng = ChaosRandom(seed: seed)
    var n = 0
    var unknownKeys: [String] = []
    var ackedKeys: [String] = []
    let nodes = client.nodeAddresses
    while !stop.isSet {
        let r = rng.unit()
        n += 1
        if pinned {
            if r < 0.5 {
                // The key names the node (1-based, in the cluster's order), for the deposed-leader check.
                let k = Int(rng.next() % UInt64(nodes.count))
                await pinnedSubmit(key: "pin\(c)-\(n)@\(k + 1)", node: nodes[k], client: client, c: c, history: history, size: size, seed: seed &+ UInt64(n))
            } else if let task = history.ackedTask(rng.unit()) {
                await read(task, pinnedTo: rng.pick(nodes), client: client, c: c, history: history)
            }
        } else if r < 0.5 {
            let key = "c\(c)-\(n)"
            if await submit(key: key, client: client, c: c, history: history, size: size, seed: seed &+ UInt64(n), unknownKeys: &unknownKeys) {
                ackedKeys.append(key)
            }
        } else if r < 0.55, !ackedKeys.isEmpty {
            // An acknowledged key again: must return the same tasks.
            var ignored: [String] = []
            await submit(key: rng.pick(ackedKeys), client: client, c: c, history: history, size: size, seed: seed &+ UInt64(n), unknownKeys: &ignored)
        } else if r < 0.65, !unknownKeys.isEmpty {
            // The same key again: applied at most once, whatever happened to the first try.
            let key = unknownKeys.removeFirst()
            await submit(key: key, client: client, c: c, history: history, size: size, seed: seed &+ UInt64(n), unknownKeys: &unknownKeys)
        } else if let task = history.ackedTask(rng.unit()) {
            await read(task, pinnedTo: nil, client: client, c: c, history: history)
        }
        try? await Task.sleep(for: .milliseconds(5 + Int(rng.next() % 20)))
    }
}

/// A submission through the retrying client (each attempt bounded, so a stopped node is skipped).
/// True if acknowledged; an unknown outcome's key is appended to `unknownKeys`.
@discardableResult
func submit(
    key: String, client: ClusterClient, c: Int, history: ChaosHistory, size: UInt32, seed: UInt64, unknownKeys: inout [String]
) async -> Bool {
    let invoked = history.now()
    do {
        let response = try await client.withSession { id, sequence in
            // A small matmul: the control plane, not the kernel, is what the load keeps busy.
            let request = matmulSubmitRequest(clientID: id, sequence: sequence, key: key, size: size, seed: seed)
            return try await client.call(timeout: .seconds(6)) {
                try await TasksClient(wrapping: $0).submit(request, options: callOptions(.milliseconds(1500)))
            }
        }
        let ids = (0..<UInt64(max(1, response.count))).map { response.firstID + $0 }
        history.record(client: c, invokedAt: invoked, completedAt: history.now(), .submit(key: key, outcome: .ok(taskIDs: ids)))
        return true
    } catch {
        history.record(client: c, invokedAt: invoked, completedAt: nil, .submit(key: key, outcome: .unknown))
        unknownKeys.append(key)
        return false
    }
}

/// One attempt on one node: a follower's refusal is definite (nothing was proposed); anything
/// else (timeout, a leader deposed before committing, a stopped node) leaves the outcome unknown.
@discardableResult
func pinnedSubmit(
    key: String, node: String, client: ClusterClient, c: Int, history: ChaosHistory, size: UInt32, seed: UInt64,
    timeout: Duration = .milliseconds(1500)
) async -> Bool {
    let invoked = history.now()
    do {
        let response = try await client.withSession { id, sequence in
            let request = matmulSubmitRequest(clientID: id, sequence: sequence, key: key, size: size, seed: seed)
            return try await client.callOnce(on: node) { try await TasksClient(wrapping: $0).submit(request, options: callOptions(timeout)) }
        }
        let ids = (0..<UInt64(max(1, response.count))).map { response.firstID + $0 }
        history.record(client: c, invokedAt: invoked, completedAt: history.now(), .submit(key: key, outcome: .ok(taskIDs: ids)))
        return true
    } catch let error as RPCError where error.code == .failedPrecondition {
        history.record(client: c, invokedAt: invoked, completedAt: history.now(), .submit(key: key, outcome: .failed(error.message)))
    } catch {
        history.record(client: c, invokedAt: invoked, completedAt: nil, .submit(key: key, outcome: .unknown))
    }
    return false
}

/// A linearizable read of one task, through any node or pinned to one (which must then either
/// answer with fresh state or fail: a node cut off from the majority serves no stale read).
func read(_ task: UInt64, pinnedTo node: String?, client: ClusterClient, c: Int, history: ChaosHistory) async {
    let invoked = history.now()
    let request = Flotilla_V1_GetTaskRequest.with { $0.id = task }
    do {
        let t: Flotilla_V1_Task
        if let node {
            t = try await client.callOnce(on: node) { try await TasksClient(wrapping: $0).getTask(request, options: callOptions(.seconds(1))) }
        } else {
            t = try await client.call(timeout: .seconds(4)) { try await TasksClient(wrapping: $0).getTask(request, options: callOptions(.seconds(1))) }
        }
        history.record(client: c, invokedAt: invoked, completedAt: history.now(), .read(task: task, outcome: .found(observation(t))))
    } catch let error as RPCError where error.code == .notFound {
        history.record(client: c, invokedAt: invoked, completedAt: history.now(), .read(task: task, outcome: .notFound))
    } catch {
        history.record(client: c, invokedAt: invoked, completedAt: nil, .read(task: task, outcome: .failed("\(error)")))
    }
}
