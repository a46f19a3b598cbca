/// A pure, self-contained model of a chaos run's client history and the checker that judges it.
///
/// Every client operation is recorded with its invocation and completion times; once the run
/// has settled, every node's manifest is captured. `HistoryChecker.check` then verifies:
/// acknowledged submissions exist exactly once and are terminal; no key was applied twice
/// (timed-out submissions may or may not exist, never twice); no task succeeded twice; reads
/// are linearizable per task on a monotonic progress order; all nodes agree.

// MARK: - History

/// A task's observable state.
public enum TaskState: String, Sendable, Hashable, CaseIterable {
    case pending, assigned, running, succeeded, failed, cancelled

    public var isTerminal: Bool { self == .succeeded || self == .failed || self == .cancelled }
}

/// What a read (or the final manifest) showed of one task.
public struct TaskObservation: Sendable, Hashable, CustomStringConvertible {
    public var state: TaskState
    /// Attempts so far; only ever grows (see `AttemptConvention`).
    public var attempts: Int
    /// Attempts that succeeded; more than 1 is always an anomaly.
    public var succeededAttempts: Int
    /// A fingerprint of the result, if the task succeeded.
    public var resultFingerprint: Double?

    public init(state: TaskState, attempts: Int, succeededAttempts: Int = 0, resultFingerprint: Double? = nil) {
        self.state = state
        self.attempts = attempts
        self.succeededAttempts = succeededAttempts
        self.resultFingerprint = resultFingerprint
    }

    public var description: String {
        var s = "\(state)(attempts \(attempts)"
        if succeededAttempts > 0 { s += ", succeeded \(succeededAttempts)" }
        if let f = resultFingerprint { s += ", result \(f)" }
        return s + ")"
    }
}

public enum SubmitOutcome: Sendable, Hashable {
    /// Acknowledged: these tasks were created (or already existed for this key).
    case ok(taskIDs: [UInt64])
    /// A definite refusal: the submission did not take effect.
    case failed(String)
    /// Timed out or otherwise indeterminate: may or may not have taken effect.
    case unknown
}

public enum ReadOutcome: Sendable, Hashable {
    case found(TaskObservation)
    /// The read completed and the task did not exist.
    case notFound
    /// The read failed (no information).
    case failed(String)
}

public enum WriteOutcome: Sendable, Hashable {
    case ok
    case failed(String)
    case unknown
}

public enum OperationKind: Sendable, Hashable {
    /// Submit under an idempotency `key`; `taskCount` is how many tasks one application creates.
    case submit(key: String, taskCount: Int = 1, outcome: SubmitOutcome)
    case read(task: UInt64, outcome: ReadOutcome)
    /// Operator retry: moves a failed/cancelled task back to pending (legitimately goes "back").
    case retry(task: UInt64, outcome: WriteOutcome)
}

/// One client operation. `completedAt == nil` means it never completed (timed out); its outcome
/// is then treated as unknown whatever it says.
public struct Operation: Sendable, Hashable {
    public var id: Int
    public var client: Int
    public var invokedAt: Double
    public var completedAt: Double?
    public var kind: OperationKind

    public init(id: Int, client: Int, invokedAt: Double, completedAt: Double?, kind: OperationKind) {
        self.id = id
        self.client = client
        self.invokedAt = invokedAt
        self.completedAt = completedAt
        self.kind = kind
    }

    public static func submit(
        _ id: Int, client: Int = 0, key: String, taskCount: Int = 1, _ outcome: SubmitOutcome,
        at invokedAt: Double, done completedAt: Double?
    ) -> Operation {
        Operation(id: id, client: client, invokedAt: invokedAt, completedAt: completedAt,
                  kind: .submit(key: key, taskCount: taskCount, outcome: outcome))
    }

    public static func read(
        _ id: Int, client: Int = 0, task: UInt64, _ outcome: ReadOutcome, at invokedAt: Double, done completedAt: Double?
    ) -> Operation {
        Operation(id: id, client: client, invokedAt: invokedAt, completedAt: completedAt, kind: .read(task: task, outcome: outcome))
    }

    public static func retry(
        _ id: Int, client: Int = 0, task: UInt64, _ outcome: WriteOutcome, at invokedAt: Double, done completedAt: Double?
    ) -> Operation {
        Operation(id: id, client: client, invokedAt: invokedAt, completedAt: completedAt, kind: .retry(task: task, outcome: outcome))
    }

    var interval: String {
        "[\(invokedAt), \(completedAt.map { "\($0)" } ?? "never")]"
    }
}

/// One task in a node's settled manifest.
public struct FinalTask: Sendable, Hashable {
    /// The submission key that created it; nil if unknown (disables the per-key checks for it).
    public var key: String?
    public var observation: TaskObservation

    public init(key: String?, _ observation: TaskObservation) {
        self.key = key
        self.observation = observation
    }
}

/// Every node's manifest once the run settled.
public struct FinalState: Sendable, Hashable {
    public var nodes: [UInt64: [UInt64: FinalTask]]

    public init(nodes: [UInt64: [UInt64: FinalTask]]) { self.nodes = nodes }

    /// The same manifest on every node in `nodeIDs`.
    public init(nodeIDs: [UInt64], tasks: [UInt64: FinalTask]) {
        var n: [UInt64: [UInt64: FinalTask]] = [:]
        for id in nodeIDs { n[id] = tasks }
        self.nodes = n
    }
}

// MARK: - Progress order

/// When a task's `attempts` count grows.
public enum AttemptConvention: Sendable, Hashable {
    /// `attempts` counts assignments (Flotilla's manifest: an attempt is appended on assign):
    /// pending(0) < assigned(1) < running(1) < pending(1) < assigned(2) < … < terminal.
    case countsAssignments
    /// `attempts` grows when a task is requeued:
    /// pending(0) < assigned(0) < running(0) < pending(1) < assigned(1) < … < terminal.
    case countsRequeues
}

/// A point in a task's monotonic progress. Ordered lexicographically by (major, minor).
/// notFound < created (an acknowledged submission) < (attempts, phase) … < terminal.
/// All terminal states share one rank; conflicting terminal observations are checked separately.
public struct Progress: Comparable, Sendable, Hashable {
    public var major: Int
    public var minor: Int

    public static let notFound = Progress(major: -2, minor: 0)
    public static let created = Progress(major: -1, minor: 0)
    public static let terminal = Progress(major: Int.max, minor: 0)

    public static func of(_ o: TaskObservation, _ convention: AttemptConvention) -> Progress {
        if o.state.isTerminal { return .terminal }
        let phase: Int
        switch (o.state, convention) {
        case (.pending, .countsRequeues): phase = 0
        case (.pending, .countsAssignments): phase = 3
        case (.assigned, _): phase = 1
        default: phase = 2  // running
        }
        return Progress(major: o.attempts, minor: phase)
    }

    public static func < (a: Progress, b: Progress) -> Bool {
        (a.major, a.minor) < (b.major, b.minor)
    }
}

// MARK: - Anomalies and report

public enum AnomalyKind: String, Sendable, Hashable, CaseIterable {
    /// An acknowledged submission's task is missing from the settled manifest.
    case lostSubmission
    /// A task is not terminal once the run settled.
    case notTerminal
    /// A key was applied more than once (two task-id sets acknowledged, or more tasks than one
    /// application creates, including timed-out submissions applied twice).
    case duplicateSubmission
    /// A task succeeded more than once, or its result changed after success.
    case succeededTwice
    /// Two different terminal outcomes for one task (not succeeded), without a retry.
    case conflictingTerminal
    /// A read (or the settled manifest) showed an older state than one an operation that
    /// completed before it began had already observed or established.
    case staleRead
    /// The settled manifests differ between nodes.
    case nodesDiverge
    /// A task no submission in the history could have created.
    case phantomTask
}

public struct Anomaly: Sendable, Hashable, CustomStringConvertible {
    public var kind: AnomalyKind
    public var tasks: [UInt64]
    public var operations: [Int]
    public var detail: String

    public init(_ kind: AnomalyKind, tasks: [UInt64] = [], operations: [Int] = [], _ detail: String) {
        self.kind = kind
        self.tasks = tasks
        self.operations = operations
        self.detail = detail
    }

    public var description: String { "\(kind.rawValue): \(detail)" }
}

public struct CheckReport: Sendable, CustomStringConvertible {
    public var operations: Int
    public var submissions: Int
    public var acknowledged: Int
    public var unknown: Int
    public var reads: Int
    public var tasks: Int
    public var anomalies: [Anomaly]

    public var isValid: Bool { anomalies.isEmpty }
    public var kinds: Set<AnomalyKind> { Set(anomalies.map(\.kind)) }

    public var description: String {
        var s = "history: \(operations) operations, \(submissions) submissions (\(acknowledged) acknowledged, "
            + "\(unknown) unknown), \(reads) reads; \(tasks) tasks settled\n"
        if anomalies.isEmpty { return s + "valid: no anomalies" }
        s += "INVALID: \(anomalies.count) anomal\(anomalies.count == 1 ? "y" : "ies")"
        for a in anomalies { s += "\n  - \(a)" }
        return s
    }
}

// MARK: - Checker

public enum HistoryChecker {
    public static func check(
        history: [Operation], final: FinalState, convention: AttemptConvention = .countsAssignments
    ) -> [Anomaly] {
        report(history: history, final: final, convention: convention).anomalies
    }

    public static func report(
        history: [Operation], final: FinalState, convention: AttemptConvention = .countsAssignments
    ) -> CheckReport {
        var anomalies: [Anomaly] = []
        let nodeIDs = final.nodes.keys.sorted()
        let reference: [UInt64: FinalTask] = nodeIDs.first.flatMap { final.nodes[$0] } ?? [:]

        // Submissions per key.
        struct KeyInfo { var acks: [(op: Int, ids: [UInt64])] = []; var anyPossible = false; var taskCount = 1; var ops: [Int] = [] }
        var keys: [String: KeyInfo] = [:]
        var ackedTask: [UInt64: (key: String, op: Operation)] = [:]
        var submissions = 0, acknowledged = 0, unknown = 0, reads = 0
        for op in history {
            guard case .submit(let key, let count, let outcome) = op.kind else {
                if case .read = op.kind { reads += 1 }
                continue
            }
            submissions += 1
            var info = keys[key] ?? KeyInfo()
            info.taskCount = max(info.taskCount, count)
            info.ops.append(op.id)
            switch effective(outcome, op) {
            case .ok(let ids):
                acknowledged += 1
                info.anyPossible = true
                info.acks.append((op.id, ids))
                for id in ids {
                    if let prior = ackedTask[id], prior.key != key {
                        anomalies.append(Anomaly(.duplicateSubmission, tasks: [id], operations: [prior.op.id, op.id],
                            "task \(id) acknowledged for key \"\(prior.key)\" (op \(prior.op.id)) and key \"\(key)\" (op \(op.id))"))
                    }
                    if ackedTask[id] == nil || (ackedTask[id]!.op.completedAt ?? .infinity) > (op.completedAt ?? .infinity) {
                        ackedTask[id] = (key, op)
                    }
                }
            case .unknown:
                unknown += 1
                info.anyPossible = true
            case .failed:
                break
            }
            keys[key] = info
        }

        // duplicateSubmission: distinct acknowledged id sets for one key.
        for key in keys.keys.sorted() {
            let acks = keys[key]!.acks
            guard let first = acks.first else { continue }
            for other in acks.dropFirst() where Set(other.ids) != Set(first.ids) {
                anomalies.append(Anomaly(.duplicateSubmission, tasks: Array(Set(first.ids).union(other.ids)).sorted(),
                    operations: [first.op, other.op],
                    "key \"\(key)\" acknowledged with tasks \(first.ids) (op \(first.op)) and \(other.ids) (op \(other.op))"))
                break
            }
        }

        // Per node: lost, notTerminal, per-key counts, phantoms, succeededAttempts.
        var lost: [UInt64: [UInt64]] = [:], nonTerminal: [UInt64: [UInt64]] = [:], twice: [UInt64: [UInt64]] = [:]
        var dupReported = Set<String>(), phantomReported = Set<UInt64>()
        for node in nodeIDs {
            let tasks = final.nodes[node]!
            for (id, _) in ackedTask where tasks[id] == nil { lost[id, default: []].append(node) }
            var byKey: [String: [UInt64]] = [:]
            for (id, t) in tasks {
                if !t.observation.state.isTerminal { nonTerminal[id, default: []].append(node) }
                if t.observation.succeededAttempts > 1 { twice[id, default: []].append(node) }
                if let k = t.key { byKey[k, default: []].append(id) }
            }
            for (key, ids) in byKey {
                let sortedIDs = ids.sorted()
                guard let info = keys[key], info.anyPossible else {
                    for id in sortedIDs where !phantomReported.contains(id) && ackedTask[id] == nil {
                        phantomReported.insert(id)
                        let why = keys[key] == nil ? "no submission of key \"\(key)\" in the history"
                            : "every submission of key \"\(key)\" failed (ops \(keys[key]!.ops))"
                        anomalies.append(Anomaly(.phantomTask, tasks: [id], operations: keys[key]?.ops ?? [],
                            "task \(id) on node \(node): \(why)"))
                    }
                    continue
                }
                let allowed = info.acks.first.map { Set($0.ids) }
                let extra = allowed.map { a in sortedIDs.filter { !a.contains($0) } } ?? []
                if (!extra.isEmpty || ids.count > info.taskCount), !dupReported.contains(key) {
                    dupReported.insert(key)
                    let ackNote = allowed.map { "acknowledged as \($0.sorted())" } ?? "never acknowledged (timed out)"
                    anomalies.append(Anomaly(.duplicateSubmission, tasks: sortedIDs, operations: info.ops,
                        "key \"\(key)\" has \(ids.count) tasks \(sortedIDs) on node \(node) but one submission creates "
                        + "\(info.taskCount); \(ackNote); submissions: ops \(info.ops)"))
                }
            }
        }
        for id in lost.keys.sorted() {
            let (key, op) = ackedTask[id]!
            anomalies.append(Anomaly(.lostSubmission, tasks: [id], operations: [op.id],
                "task \(id) (key \"\(key)\") acknowledged by op \(op.id) at \(op.completedAt ?? 0) is missing on node(s) \(lost[id]!)"))
        }
        for (id, node) in ackedTask.keys.sorted().compactMap({ id in reference[id].map { (id, $0) } }) {
            if let k = node.key, k != ackedTask[id]!.key {
                anomalies.append(Anomaly(.lostSubmission, tasks: [id], operations: [ackedTask[id]!.op.id],
                    "task \(id) acknowledged for key \"\(ackedTask[id]!.key)\" but settled with key \"\(k)\""))
            }
        }
        for id in nonTerminal.keys.sorted() {
            let state = final.nodes[nonTerminal[id]!.first!]![id]!.observation
            let ack = ackedTask[id].map { " (acknowledged by op \($0.op.id))" } ?? ""
            anomalies.append(Anomaly(.notTerminal, tasks: [id], "task \(id)\(ack) is \(state) once settled on node(s) \(nonTerminal[id]!)"))
        }
        for id in twice.keys.sorted() {
            let state = final.nodes[twice[id]!.first!]![id]!.observation
            anomalies.append(Anomaly(.succeededTwice, tasks: [id], "task \(id) settled as \(state) on node(s) \(twice[id]!)"))
        }

        // nodesDiverge.
        if let refNode = nodeIDs.first {
            for node in nodeIDs.dropFirst() {
                let other = final.nodes[node]!
                let ids = Set(reference.keys).union(other.keys).sorted()
                let differing = ids.filter { reference[$0] != other[$0] }
                guard !differing.isEmpty else { continue }
                let shown = differing.prefix(5).map { id in
                    "task \(id): \(show(reference[id])) vs \(show(other[id]))"
                }
                anomalies.append(Anomaly(.nodesDiverge, tasks: Array(differing),
                    "node \(node) differs from node \(refNode) on \(differing.count) task(s): " + shown.joined(separator: "; ")
                    + (differing.count > 5 ? "; …" : "")))
            }
        }

        anomalies += linearizability(history: history, ackedTask: ackedTask, reference: reference, convention: convention)

        let taskCount = Set(final.nodes.values.flatMap(\.keys)).count
        return CheckReport(operations: history.count, submissions: submissions, acknowledged: acknowledged,
                           unknown: unknown, reads: reads, tasks: taskCount, anomalies: anomalies)
    }

    private static func effective(_ o: SubmitOutcome, _ op: Operation) -> SubmitOutcome {
        op.completedAt == nil ? .unknown : o
    }

    private static func show(_ t: FinalTask?) -> String {
        guard let t else { return "absent" }
        return "\(t.observation)" + (t.key.map { " key \"\($0)\"" } ?? "")
    }

    /// A point of evidence about one task: an operation that observed or established `progress`.
    private struct Evidence {
        var op: Operation
        var progress: Progress
        var observation: TaskObservation?
        var isRead: Bool
    }

    private static func linearizability(
        history: [Operation], ackedTask: [UInt64: (key: String, op: Operation)], reference: [UInt64: FinalTask],
        convention: AttemptConvention
    ) -> [Anomaly] {
        var anomalies: [Anomaly] = []
        var evidence: [UInt64: [Evidence]] = [:]
        var retries: [UInt64: [Operation]] = [:]
        for op in history {
            switch op.kind {
            case .submit(_, _, let outcome):
                guard op.completedAt != nil, case .ok(let ids) = outcome else { continue }
                for id in ids { evidence[id, default: []].append(Evidence(op: op, progress: .created, observation: nil, isRead: false)) }
            case .read(let task, let outcome):
                guard op.completedAt != nil else { continue }
                switch outcome {
                case .found(let o):
                    evidence[task, default: []].append(Evidence(op: op, progress: .of(o, convention), observation: o, isRead: true))
                case .notFound:
                    evidence[task, default: []].append(Evidence(op: op, progress: .notFound, observation: nil, isRead: true))
                case .failed: continue
                }
            case .retry(let task, let outcome):
                if case .failed = outcome, op.completedAt != nil { continue }
                retries[task, default: []].append(op)
            }
        }

        for task in evidence.keys.sorted() {
            let ev = evidence[task]!
            let taskRetries = retries[task] ?? []
            // Could a retry have taken effect between P's observation and R's?
            func separated(_ p: Operation, _ r: Operation) -> Bool {
                taskRetries.contains { x in
                    x.invokedAt < (r.completedAt ?? .infinity) && (x.completedAt ?? .infinity) > p.invokedAt
                }
            }
            // succeeded once, or results changed after success.
            for e in ev where e.isRead {
                if let o = e.observation, o.succeededAttempts > 1 {
                    anomalies.append(Anomaly(.succeededTwice, tasks: [task], operations: [e.op.id],
                        "read op \(e.op.id) \(e.op.interval) of task \(task) returned \(o)"))
                }
            }
            let terminals = ev.filter { $0.observation?.state.isTerminal == true }
            var conflictReported = false
            for (i, a) in terminals.enumerated() where !conflictReported {
                for b in terminals[(i + 1)...] where a.observation != b.observation && taskRetries.isEmpty {
                    let kind: AnomalyKind = (a.observation!.state == .succeeded || b.observation!.state == .succeeded)
                        ? .succeededTwice : .conflictingTerminal
                    anomalies.append(Anomaly(kind, tasks: [task], operations: [a.op.id, b.op.id],
                        "task \(task): op \(a.op.id) \(a.op.interval) read \(a.observation!) but op \(b.op.id) "
                        + "\(b.op.interval) read \(b.observation!)"))
                    conflictReported = true
                    break
                }
            }
            if !conflictReported, taskRetries.isEmpty, let f = reference[task]?.observation, f.state.isTerminal,
               let a = terminals.first(where: { $0.observation != f }) {
                let kind: AnomalyKind = (a.observation!.state == .succeeded || f.state == .succeeded) ? .succeededTwice : .conflictingTerminal
                anomalies.append(Anomaly(kind, tasks: [task], operations: [a.op.id],
                    "task \(task): op \(a.op.id) \(a.op.interval) read \(a.observation!) but it settled as \(f)"))
            }

            // Stale reads: R is stale if P completed before R was invoked with strictly later progress.
            for r in ev where r.isRead {
                var worst: Evidence?
                for p in ev where p.op.id != r.op.id {
                    guard let done = p.op.completedAt, done < r.op.invokedAt, r.progress < p.progress else { continue }
                    if separated(p.op, r.op) { continue }
                    if worst == nil || worst!.progress < p.progress { worst = p }
                }
                if let p = worst {
                    let what = r.observation.map { "\($0)" } ?? "not found"
                    let saw = p.observation.map { "observed \($0)" } ?? "acknowledged its submission"
                    anomalies.append(Anomaly(.staleRead, tasks: [task], operations: [r.op.id, p.op.id],
                        "read op \(r.op.id) \(r.op.interval) of task \(task) returned \(what), but op \(p.op.id) "
                        + "\(p.op.interval), completed before it began, \(saw)"))
                }
            }
            // The settled state must not be older than anything observed (without a later retry).
            if let f = reference[task]?.observation, taskRetries.isEmpty {
                let fp = Progress.of(f, convention)
                if let p = ev.filter({ fp < $0.progress }).max(by: { $0.progress < $1.progress }) {
                    anomalies.append(Anomaly(.staleRead, tasks: [task], operations: [p.op.id],
                        "task \(task) settled as \(f), older than \(p.observation.map { "\($0)" } ?? "?") observed by op \(p.op.id) \(p.op.interval)"))
                }
            }
        }
        return anomalies
    }
}
