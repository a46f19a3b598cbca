import ChaosCheck
import Testing

// MARK: - Helpers

private func o(_ s: TaskState, _ attempts: Int, result: Double? = nil) -> TaskObservation {
    TaskObservation(state: s, attempts: attempts, succeededAttempts: s == .succeeded ? 1 : 0,
                    resultFingerprint: s == .succeeded ? (result ?? 1.5) : nil)
}

private func done(_ key: String, _ attempts: Int = 1, result: Double? = nil) -> FinalTask {
    FinalTask(key: key, o(.succeeded, attempts, result: result))
}

private func settled(_ tasks: [UInt64: FinalTask]) -> FinalState {
    FinalState(nodeIDs: [1, 2, 3], tasks: tasks)
}

private func kinds(_ history: [Operation], _ final: FinalState) -> [AnomalyKind] {
    let report = HistoryChecker.report(history: history, final: final)
    if !report.isValid { print(report) }
    return report.anomalies.map(\.kind)
}

/// A seeded SplitMix64.
private struct Rng {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ p: Double) -> Bool { unit() < p }
}

// MARK: - Clean histories

@Suite struct CleanHistoryTests {
    @Test func concurrentClientsTimeoutsAndOverlappingReadsPass() {
        let history: [Operation] = [
            // Client 1: acknowledged submission of two tasks.
            .submit(1, client: 1, key: "a", taskCount: 2, .ok(taskIDs: [10, 11]), at: 0, done: 2),
            // Client 2: a timeout that did take effect, then its retry under the same key acknowledged.
            .submit(2, client: 2, key: "b", .unknown, at: 1, done: nil),
            .submit(3, client: 2, key: "b", .ok(taskIDs: [12]), at: 5, done: 6),
            // Client 3: a timeout that never took effect, and a definite failure.
            .submit(4, client: 3, key: "c", .unknown, at: 1, done: nil),
            .submit(5, client: 3, key: "d", .failed("not leader"), at: 2, done: 2.5),
            // Client 4: timeout that did take effect, never retried.
            .submit(6, client: 4, key: "e", .unknown, at: 3, done: nil),
            // A read concurrent with the submission may miss the task.
            .read(7, client: 3, task: 10, .notFound, at: 1, done: 3),
            // Overlapping reads: 9 started before 8 completed, so 9 may show the older state.
            .read(8, client: 3, task: 10, .found(o(.running, 1)), at: 4, done: 7),
            .read(9, client: 4, task: 10, .found(o(.assigned, 1)), at: 6, done: 8),
            // Requeued: pending with 1 attempt is later than running with 1 attempt.
            .read(10, client: 4, task: 10, .found(o(.pending, 1)), at: 9, done: 10),
            .read(11, client: 1, task: 10, .found(o(.succeeded, 2)), at: 11, done: 12),
            .read(12, client: 2, task: 10, .found(o(.succeeded, 2)), at: 13, done: 14),
            // A read that timed out says nothing.
            .read(13, client: 2, task: 11, .found(o(.pending, 0)), at: 15, done: nil),
            .read(14, client: 2, task: 11, .failed("unavailable"), at: 15, done: 16),
            // Task 12: failed, operator retry, then succeeded; reads straddle the retry.
            .read(15, client: 1, task: 12, .found(o(.failed, 3)), at: 7, done: 8),
            .retry(16, client: 1, task: 12, .ok, at: 9, done: 10),
            .read(17, client: 1, task: 12, .found(o(.pending, 3)), at: 11, done: 12),
            .read(18, client: 1, task: 12, .found(o(.succeeded, 4)), at: 13, done: 14),
        ]
        let final = settled([
            10: done("a", 2), 11: FinalTask(key: "a", o(.cancelled, 0)), 12: done("b", 4),
            13: FinalTask(key: "e", o(.failed, 3)),
        ])
        let report = HistoryChecker.report(history: history, final: final)
        #expect(report.isValid, "\(report)")
        #expect(report.operations == 18)
        #expect(report.acknowledged == 2)
        #expect(report.unknown == 3)
        #expect(report.reads == 11)
        #expect(report.tasks == 4)
        #expect(report.description.contains("valid"))
    }

    @Test func requeueConventionIsConfigurable() {
        // With attempts counted on requeue, running(0) < pending(1).
        let history: [Operation] = [
            .submit(1, key: "a", .ok(taskIDs: [1]), at: 0, done: 1),
            .read(2, task: 1, .found(o(.running, 0)), at: 2, done: 3),
            .read(3, task: 1, .found(o(.pending, 1)), at: 4, done: 5),
        ]
        let final = settled([1: done("a", 1)])
        #expect(HistoryChecker.check(history: history, final: final, convention: .countsRequeues).isEmpty)
        // Under countsAssignments, pending(1) after running(0) is fine too (attempts grew).
        #expect(HistoryChecker.check(history: history, final: final).isEmpty)
        // But pending(0) after running(0) is stale only under countsRequeues.
        let stale = history.dropLast() + [.read(3, task: 1, .found(o(.pending, 0)), at: 4, done: 5)]
        #expect(HistoryChecker.check(history: Array(stale), final: final, convention: .countsRequeues).map(\.kind) == [.staleRead])
    }
}

// MARK: - The checker bites

@Suite struct AnomalyTests {
    @Test func lostAcknowledgedSubmission() {
        let history: [Operation] = [
            .submit(1, key: "a", .ok(taskIDs: [1]), at: 0, done: 1),
            .submit(2, key: "b", .ok(taskIDs: [2]), at: 0, done: 1),
        ]
        let anomalies = HistoryChecker.check(history: history, final: settled([1: done("a")]))
        #expect(anomalies.map(\.kind) == [.lostSubmission])
        #expect(anomalies[0].tasks == [2] && anomalies[0].operations == [2])
        #expect(anomalies[0].detail.contains("task 2"))
    }

    @Test func duplicatedSubmissionByKey() {
        // Two acknowledgements for one key with different tasks.
        let history: [Operation] = [
            .submit(1, client: 1, key: "a", .ok(taskIDs: [1]), at: 0, done: 1),
            .submit(2, client: 1, key: "a", .ok(taskIDs: [2]), at: 2, done: 3),
        ]
        let final = settled([1: done("a"), 2: done("a")])
        #expect(Set(kinds(history, final)) == [.duplicateSubmission])
    }

    @Test func timedOutSubmissionAppliedTwice() {
        let history: [Operation] = [
            .submit(1, client: 1, key: "a", .unknown, at: 0, done: nil),
            .submit(2, client: 1, key: "a", .unknown, at: 5, done: nil),
        ]
        // Either may have taken effect — but one key must never produce two tasks.
        #expect(kinds(history, settled([7: done("a")])).isEmpty)
        #expect(kinds(history, settled([:])).isEmpty)
        #expect(kinds(history, settled([7: done("a"), 8: done("a")])) == [.duplicateSubmission])
    }

    @Test func succeededTwice() {
        let history: [Operation] = [
            .submit(1, key: "a", .ok(taskIDs: [1]), at: 0, done: 1),
            .read(2, task: 1, .found(TaskObservation(state: .succeeded, attempts: 2, succeededAttempts: 2, resultFingerprint: 1.5)),
                  at: 5, done: 6),
        ]
        let final = settled([1: FinalTask(key: "a", TaskObservation(state: .succeeded, attempts: 2, succeededAttempts: 2, resultFingerprint: 1.5))])
        #expect(Set(kinds(history, final)) == [.succeededTwice])
        // A result that changes after success is flagged the same way, however the reads overlap.
        let changed: [Operation] = [
            .submit(1, key: "a", .ok(taskIDs: [1]), at: 0, done: 1),
            .read(2, task: 1, .found(o(.succeeded, 1, result: 1.5)), at: 5, done: 9),
            .read(3, task: 1, .found(o(.succeeded, 2, result: 2.5)), at: 6, done: 8),
        ]
        #expect(Set(kinds(changed, settled([1: done("a", 2, result: 2.5)]))) == [.succeededTwice])
    }

    @Test func staleReadAfterCompletedLaterRead() {
        let history: [Operation] = [
            .submit(1, key: "a", .ok(taskIDs: [1]), at: 0, done: 1),
            .read(2, client: 1, task: 1, .found(o(.running, 1)), at: 2, done: 3),
            .read(3, client: 2, task: 1, .found(o(.pending, 0)), at: 4, done: 5),
        ]
        let anomalies = HistoryChecker.check(history: history, final: settled([1: done("a")]))
        #expect(anomalies.map(\.kind) == [.staleRead])
        #expect(anomalies.first?.operations == [3, 2])
        // The same reads overlapping in time are fine.
        var overlapping = history
        overlapping[2] = .read(3, client: 2, task: 1, .found(o(.pending, 0)), at: 2.5, done: 5)
        #expect(HistoryChecker.check(history: overlapping, final: settled([1: done("a")])).isEmpty)
    }

    @Test func staleReadOfAcknowledgedTaskNotFound() {
        let history: [Operation] = [
            .submit(1, key: "a", .ok(taskIDs: [1]), at: 0, done: 1),
            .read(2, task: 1, .notFound, at: 2, done: 3),
        ]
        #expect(kinds(history, settled([1: done("a")])) == [.staleRead])
        // Concurrent with the acknowledgement: fine.
        let concurrent: [Operation] = [
            .submit(1, key: "a", .ok(taskIDs: [1]), at: 0, done: 1),
            .read(2, task: 1, .notFound, at: 0.5, done: 3),
        ]
        #expect(kinds(concurrent, settled([1: done("a")])).isEmpty)
    }

    @Test func nodesDiverge() {
        let history: [Operation] = [.submit(1, key: "a", .ok(taskIDs: [1]), at: 0, done: 1)]
        let final = FinalState(nodes: [
            1: [1: done("a")], 2: [1: done("a")], 3: [1: FinalTask(key: "a", o(.failed, 3))],
        ])
        let anomalies = HistoryChecker.check(history: history, final: final)
        #expect(anomalies.map(\.kind) == [.nodesDiverge])
        #expect(anomalies.first?.detail.contains("node 3") == true)
    }

    @Test func notTerminalAndPhantom() {
        let history: [Operation] = [
            .submit(1, key: "a", .ok(taskIDs: [1]), at: 0, done: 1),
            .submit(2, key: "b", .failed("not leader"), at: 0, done: 1),
        ]
        #expect(kinds(history, settled([1: FinalTask(key: "a", o(.running, 1))])) == [.notTerminal])
        #expect(kinds(history, settled([1: done("a"), 2: done("b")])) == [.phantomTask])
        #expect(kinds(history, settled([1: done("a"), 3: done("zzz")])) == [.phantomTask])
    }
}

// MARK: - Property: random valid histories pass; single mutations are flagged

/// A simple sequential model of the manifest; operations are given random intervals that contain
/// their linearization point, so clients overlap arbitrarily.
private struct Generated {
    var history: [Operation]
    var final: [UInt64: FinalTask]
    var retried: Set<UInt64>
}

private func generate(seed: UInt64) -> Generated {
    var rng = Rng(state: seed)
    var tasks: [UInt64: (key: String, obs: TaskObservation)] = [:]
    var applied: [String: [UInt64]] = [:]
    var keys: [String] = []
    var retried = Set<UInt64>()
    var history: [Operation] = []
    var nextTask: UInt64 = 100
    var t = 0.0
    var opID = 0
    var hot: UInt64?  // the task last advanced; reads favour it so that they race its progress
    func interval(_ rng: inout Rng, _ t: Double, completes: Bool = true) -> (Double, Double?) {
        (t - rng.unit() * 5, completes ? t + rng.unit() * 5 : nil)
    }
    func apply(_ key: String, _ count: Int) -> [UInt64] {
        if let ids = applied[key] { return ids }
        let ids = (0..<count).map { nextTask + UInt64($0) }
        nextTask += UInt64(count)
        for id in ids { tasks[id] = (key, o(.pending, 0)) }
        applied[key] = ids
        return ids
    }
    func advance(_ id: UInt64, _ rng: inout Rng) {
        var s = tasks[id]!.obs
        switch s.state {
        case .pending: s = rng.chance(0.05) ? o(.cancelled, s.attempts) : o(.assigned, s.attempts + 1)
        case .assigned: s = o(.running, s.attempts)
        case .running:
            let r = rng.unit()
            s = r < 0.3 && s.attempts < 3 ? o(.pending, s.attempts)
                : r < 0.85 ? o(.succeeded, s.attempts, result: Double(id) + 0.5) : o(.failed, s.attempts)
        default: return
        }
        tasks[id]!.obs = s
    }
    for _ in 0..<120 {
        t += 0.2 + rng.unit()
        opID += 1
        let client = rng.below(5)
        let r = rng.unit()
        if r < 0.25 {
            // Submit a new key, or resubmit an earlier one (a client retrying after a timeout).
            let key = !keys.isEmpty && rng.chance(0.25) ? keys[rng.below(keys.count)] : "k\(opID)"
            if !keys.contains(key) { keys.append(key) }
            let count = key.utf8.reduce(0) { $0 &+ Int($1) } & 1 == 0 ? 1 : 2
            let fate = rng.unit()
            if fate < 0.65 {
                let ids = apply(key, count)
                let (a, b) = interval(&rng, t)
                history.append(.submit(opID, client: client, key: key, taskCount: count, .ok(taskIDs: ids), at: a, done: b))
            } else if fate < 0.8 {
                _ = apply(key, count)
                let (a, _) = interval(&rng, t)
                history.append(.submit(opID, client: client, key: key, taskCount: count, .unknown, at: a, done: nil))
            } else if fate < 0.92 {
                let (a, _) = interval(&rng, t)
                history.append(.submit(opID, client: client, key: key, taskCount: count, .unknown, at: a, done: nil))
            } else {
                let (a, b) = interval(&rng, t)
                history.append(.submit(opID, client: client, key: key, taskCount: count, .failed("not leader"), at: a, done: b))
            }
        } else if r < 0.55, !tasks.isEmpty {
            let id = hot.flatMap { h in rng.chance(0.5) ? h : nil } ?? tasks.keys.sorted()[rng.below(tasks.count)]
            advance(id, &rng)
            hot = id
            opID -= 1  // not a client operation
        } else if r < 0.58, let id = tasks.keys.sorted().first(where: { [.failed, .cancelled].contains(tasks[$0]!.obs.state) }) {
            tasks[id]!.obs = o(.pending, tasks[id]!.obs.attempts)
            retried.insert(id)
            let (a, b) = interval(&rng, t)
            history.append(.retry(opID, client: client, task: id, .ok, at: a, done: b))
        } else if nextTask > 100 {
            let id = hot.flatMap { h in rng.chance(0.6) ? h : nil }
                ?? 100 + UInt64(rng.below(Int(nextTask - 100) + 1))  // sometimes not (yet) created
            let outcome: ReadOutcome = tasks[id].map { .found($0.obs) } ?? .notFound
            let (a, b) = interval(&rng, t, completes: !rng.chance(0.1))
            history.append(.read(opID, client: client, task: id, rng.chance(0.05) ? .failed("timeout") : outcome, at: a, done: b))
        } else {
            opID -= 1
        }
    }
    for id in tasks.keys.sorted() {
        while !tasks[id]!.obs.state.isTerminal { advance(id, &rng) }
    }
    return Generated(history: history, final: tasks.mapValues { FinalTask(key: $0.key, $0.obs) }, retried: retried)
}

@Suite struct PropertyTests {
    static let seeds: [UInt64] = Array(1...40)

    @Test(arguments: seeds) func randomValidHistoriesPass(seed: UInt64) {
        let g = generate(seed: seed)
        let report = HistoryChecker.report(history: g.history, final: settled(g.final))
        #expect(report.isValid, "seed \(seed): \(report)")
        #expect(report.acknowledged > 0 && report.reads > 0)
    }

    /// The generated histories do exercise concurrency: overlapping reads of one task where the
    /// later-invoked read returned older progress (legal, must not be flagged), and timeouts.
    @Test func generatedHistoriesExerciseConcurrency() {
        var overlappingRegressions = 0, timeouts = 0, notFound = 0
        for seed in Self.seeds {
            let g = generate(seed: seed)
            let reads = g.history.compactMap { op -> (Operation, UInt64, Progress)? in
                guard op.completedAt != nil, case .read(let task, let outcome) = op.kind else { return nil }
                switch outcome {
                case .found(let obs): return (op, task, Progress.of(obs, .countsAssignments))
                case .notFound: return (op, task, .notFound)
                case .failed: return nil
                }
            }
            for (a, ta, pa) in reads {
                for (b, tb, pb) in reads where ta == tb && a.invokedAt < b.invokedAt && b.invokedAt < a.completedAt! && pb < pa {
                    overlappingRegressions += 1
                }
                if pa == .notFound { notFound += 1 }
            }
            timeouts += g.history.filter { $0.completedAt == nil }.count
        }
        #expect(overlappingRegressions >= 20)
        #expect(timeouts > 0)
        #expect(notFound > 0)
        print("generated: \(overlappingRegressions) overlapping read regressions, \(timeouts) timeouts, \(notFound) not-found reads")
    }

    @Test(arguments: seeds) func droppedTaskIsFlagged(seed: UInt64) throws {
        var g = generate(seed: seed)
        let acked = g.history.flatMap { op -> [UInt64] in
            if case .submit(_, _, .ok(let ids)) = op.kind, op.completedAt != nil { return ids }
            return []
        }
        let victim = try #require(acked.sorted().first)
        g.final[victim] = nil
        let kinds = HistoryChecker.report(history: g.history, final: settled(g.final)).kinds
        #expect(kinds.contains(.lostSubmission), "seed \(seed)")
    }

    @Test(arguments: seeds) func duplicatedTaskIsFlagged(seed: UInt64) throws {
        var g = generate(seed: seed)
        let victim = try #require(g.final.keys.sorted().first)
        g.final[999_999] = g.final[victim]
        let kinds = HistoryChecker.report(history: g.history, final: settled(g.final)).kinds
        #expect(kinds.contains(.duplicateSubmission), "seed \(seed)")
    }

    @Test func olderReadIsFlagged() {
        var mutated = 0
        for seed in Self.seeds {
            var g = generate(seed: seed)
            // Find a read R and a read P of the same task (never retried) such that P completed
            // before R began and P saw progress beyond pending(0); make R return pending(0).
            let reads = g.history.enumerated().compactMap { (i, op) -> (Int, UInt64, TaskObservation)? in
                guard case .read(let task, .found(let obs)) = op.kind, op.completedAt != nil, !g.retried.contains(task) else { return nil }
                return (i, task, obs)
            }
            var target: Int?
            search: for (i, task, _) in reads {
                for (j, other, obs) in reads where other == task && j != i && obs != o(.pending, 0) {
                    if g.history[j].completedAt! < g.history[i].invokedAt { target = i; break search }
                }
            }
            guard let i = target, case .read(let task, _) = g.history[i].kind else { continue }
            g.history[i].kind = .read(task: task, outcome: .found(o(.pending, 0)))
            let kinds = HistoryChecker.report(history: g.history, final: settled(g.final)).kinds
            #expect(kinds.contains(.staleRead), "seed \(seed)")
            mutated += 1
        }
        #expect(mutated >= 10)
    }
}
