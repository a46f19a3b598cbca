import Raft
import Testing

@testable import Manifest

/// Applies a command after a round trip through its encoding, as a node would.
@discardableResult
func apply(_ m: inout TaskManifest, _ c: ManifestCommand) -> ManifestReply {
    let decoded = try! ManifestCommand(decoding: c.encoded)
    #expect(decoded == c)
    let reply = m.apply(decoded)
    #expect(try! ManifestReply(decoding: reply.encoded) == reply)
    return reply
}

func spec(_ size: UInt32 = 64, zone: String = "", job: String = "", maxAttempts: UInt8 = 3) -> TaskSpec {
    var s = TaskSpec(size: size)
    s.zone = zone
    s.job = job
    s.maxAttempts = maxAttempts
    return s
}

func join(_ m: inout TaskManifest, _ id: AgentID, zone: String = "z1", slots: UInt16 = 1, incarnation: UInt64 = 1) {
    #expect(apply(&m, .agentJoined(agent: id, zone: zone, slots: slots, incarnation: incarnation, info: "", at: 1)) == .done)
}

@Suite struct ManifestTests {
    @Test func submitIsIdempotentByKey() {
        var m = TaskManifest()
        #expect(apply(&m, .submit(key: "k", spec: spec(), count: 3, at: 10)) == .submitted(first: 1, count: 3, existing: false))
        #expect(apply(&m, .submit(key: "k", spec: spec(128), count: 3, at: 11)) == .submitted(first: 1, count: 3, existing: true))
        #expect(apply(&m, .submit(key: "", spec: spec(), count: 1, at: 12)) == .submitted(first: 4, count: 1, existing: false))
        #expect(m.tasks.count == 4)
        #expect(m.pending == [1, 2, 3, 4])
        #expect(m[2]!.spec.seed == 2)  // seeds follow the first one
    }

    /// Issue #7's first finding: `ListTasks` with `after_id = 2^64 - 1` trapped on `after + 1`
    /// and stopped the node that served it. Any id a client can send lists safely.
    @Test(arguments: [UInt64.max, UInt64.max - 1, 1 << 63, 4, 3, 0])
    func listingAfterAnyIDNeverTraps(after: UInt64) {
        var m = TaskManifest()
        apply(&m, .submit(key: "", spec: spec(), count: 4, at: 1))
        let listed = m.list(after: after).map(\.id)
        #expect(listed == Array((after < 4 ? after + 1 : 5)..<5))
        #expect(m.list(after: after, limit: 0).isEmpty)
    }

    @Test func absurdSubmissionsAreRefused() {
        var m = TaskManifest()
        guard case .refused = apply(&m, .submit(key: "", spec: spec(0), count: 1, at: 1)) else { Issue.record("size 0 accepted"); return }
        guard case .refused = apply(&m, .submit(key: "", spec: spec(100_000), count: 1, at: 1)) else { Issue.record("size 100000 accepted"); return }
        guard case .refused = apply(&m, .submit(key: "", spec: spec(), count: 0, at: 1)) else { Issue.record("count 0 accepted"); return }
        #expect(m.tasks.isEmpty)
    }

    @Test func lifecycleToSuccess() {
        var m = TaskManifest()
        join(&m, "a1")
        apply(&m, .submit(key: "", spec: spec(), count: 1, at: 10))
        #expect(apply(&m, .assign(task: 1, attempt: 1, agent: "a1", at: 11)) == .done)
        #expect(m[1]!.state == .assigned)
        #expect(m.freeSlots("a1") == 0)
        guard case .refused = apply(&m, .assign(task: 1, attempt: 2, agent: "a1", at: 11)) else {
            Issue.record("double assignment accepted")
            return
        }
        #expect(apply(&m, .started(task: 1, attempt: 1, agent: "a1", at: 12)) == .done)
        #expect(m[1]!.state == .running)
        var r = TaskResult()
        r.gflops = 12.5
        r.verified = true
        #expect(apply(&m, .complete(task: 1, attempt: 1, agent: "a1", result: r, at: 13)) == .done)
        #expect(m[1]!.state == .succeeded)
        #expect(m[1]!.result == r)
        #expect(m.freeSlots("a1") == 1)
        // A second report of the same attempt is refused: one outcome per task.
        guard case .refused = apply(&m, .complete(task: 1, attempt: 1, agent: "a1", result: r, at: 14)) else {
            Issue.record("second completion recorded")
            return
        }
        #expect(m.counts[.succeeded] == 1 && m.counts[.pending, default: 0] == 0)
    }

    @Test func failedAttemptsRequeueThenFailForGood() {
        var m = TaskManifest()
        join(&m, "a1")
        apply(&m, .submit(key: "", spec: spec(maxAttempts: 3), count: 1, at: 10))
        for attempt in UInt32(1)...3 {
            #expect(apply(&m, .assign(task: 1, attempt: attempt, agent: "a1", at: 11)) == .done)
            #expect(apply(&m, .fail(task: 1, attempt: attempt, agent: "a1", reason: "boom \(attempt)", at: 12)) == .done)
        }
        let t = m[1]!
        #expect(t.state == .failed)
        #expect(t.attempts.map(\.outcome) == [.failed("boom 1"), .failed("boom 2"), .failed("boom 3")])
        #expect(t.reason.contains("3 attempts"))
        #expect(m.pending.isEmpty)
        // An operator's retry gives it a fresh budget.
        #expect(apply(&m, .retry(task: 1, at: 20)) == .done)
        #expect(m[1]!.state == .pending && m.pending == [1])
        #expect(apply(&m, .assign(task: 1, attempt: 4, agent: "a1", at: 21)) == .done)
    }

    @Test func deadAgentsTasksAreRequeuedAndItsLateResultRefused() {
        var m = TaskManifest()
        join(&m, "a1")
        join(&m, "a2")
        apply(&m, .submit(key: "", spec: spec(), count: 1, at: 10))
        apply(&m, .assign(task: 1, attempt: 1, agent: "a1", at: 11))
        #expect(apply(&m, .agentDead(agent: "a1", reason: "silent", at: 20)) == .done)
        #expect(m[1]!.state == .pending)
        #expect(m[1]!.attempts[0].outcome == .abandoned("agent a1 declared dead: silent"))
        #expect(m.agents["a1"]!.state == .dead)
        guard case .refused = apply(&m, .assign(task: 1, attempt: 2, agent: "a1", at: 21)) else {
            Issue.record("dead agent got work")
            return
        }
        #expect(apply(&m, .assign(task: 1, attempt: 2, agent: "a2", at: 21)) == .done)
        // The dead agent comes back with a result of the superseded attempt: fenced off.
        guard case .refused = apply(&m, .complete(task: 1, attempt: 1, agent: "a1", result: TaskResult(), at: 22)) else {
            Issue.record("superseded attempt recorded")
            return
        }
        #expect(apply(&m, .complete(task: 1, attempt: 2, agent: "a2", result: TaskResult(), at: 23)) == .done)
        #expect(m[1]!.state == .succeeded)
    }

    @Test func restartedAgentLosesItsAttemptsButSameIncarnationKeepsThem() {
        var m = TaskManifest()
        join(&m, "a1", slots: 2, incarnation: 7)
        apply(&m, .submit(key: "", spec: spec(), count: 2, at: 10))
        apply(&m, .assign(task: 1, attempt: 1, agent: "a1", at: 11))
        join(&m, "a1", slots: 2, incarnation: 7)  // re-registration with a new leader
        #expect(m[1]!.state == .assigned)
        join(&m, "a1", slots: 2, incarnation: 8)  // the process restarted
        #expect(m[1]!.state == .pending)
        #expect(m[1]!.attempts[0].outcome == .abandoned("agent a1 restarted"))
    }

    /// A draining agent re-registers with zero slots: it keeps its work and gets no more. A new
    /// agent still needs a slot.
    @Test func aDrainingAgentKeepsItsWorkAndGetsNoMore() {
        var m = TaskManifest()
        join(&m, "a1", slots: 2, incarnation: 7)
        apply(&m, .submit(key: "", spec: spec(), count: 3, at: 10))
        apply(&m, .assign(task: 1, attempt: 1, agent: "a1", at: 11))
        join(&m, "a1", slots: 0, incarnation: 7)
        #expect(m[1]!.state == .assigned)
        #expect(m.agents["a1"]!.slots == 0 && m.agents["a1"]!.state == .live)
        let view = LeaderView(now: 12, leaderSince: 0, heartbeats: ["a1": .init(at: 12, incarnation: 7)])
        #expect(Scheduler.duties(manifest: m, view: view, config: SchedulerConfig()).isEmpty)
        #expect(apply(&m, .assign(task: 2, attempt: 1, agent: "a1", at: 13)) != .done)
        #expect(apply(&m, .agentJoined(agent: "a2", zone: "z", slots: 0, incarnation: 1, info: "", at: 14)) == .refused("an agent needs at least one slot"))
        // A restarted process cannot register with zero slots either.
        #expect(apply(&m, .agentJoined(agent: "a1", zone: "z", slots: 0, incarnation: 8, info: "", at: 15)) == .refused("an agent needs at least one slot"))
    }

    @Test func cancelAndPause() {
        var m = TaskManifest()
        join(&m, "a1")
        apply(&m, .submit(key: "", spec: spec(job: "j"), count: 2, at: 10))
        apply(&m, .assign(task: 1, attempt: 1, agent: "a1", at: 11))
        #expect(apply(&m, .cancel(task: 1, reason: "", at: 12)) == .done)
        #expect(m[1]!.state == .cancelled && m.freeSlots("a1") == 1)
        apply(&m, .pauseJob(job: "j", at: 13))
        let view = LeaderView(now: 14, leaderSince: 0, heartbeats: ["a1": .init(at: 14, incarnation: 1)])
        #expect(Scheduler.duties(manifest: m, view: view, config: SchedulerConfig()).isEmpty)
        apply(&m, .resumeJob(job: "j", at: 15))
        #expect(Scheduler.duties(manifest: m, view: view, config: SchedulerConfig()) == [.assign(task: 2, attempt: 1, agent: "a1", at: 14)])
    }

    @Test func snapshotRoundTripsAndIsDeterministic() throws {
        var m = TaskManifest()
        join(&m, "b", zone: "gcp", slots: 2)
        join(&m, "a", zone: "aws", slots: 1)
        apply(&m, .submit(key: "x", spec: spec(zone: "aws"), count: 4, at: 10))
        apply(&m, .assign(task: 1, attempt: 1, agent: "a", at: 11))
        apply(&m, .assign(task: 2, attempt: 1, agent: "b", at: 11))
        apply(&m, .started(task: 2, attempt: 1, agent: "b", at: 12))
        var r = TaskResult()
        r.kernel = "SkylakeX"
        apply(&m, .complete(task: 2, attempt: 1, agent: "b", result: r, at: 13))
        apply(&m, .fail(task: 1, attempt: 1, agent: "a", reason: "oops", at: 14))
        apply(&m, .pauseJob(job: "j", at: 15))
        let bytes = m.snapshot()
        let restored = try TaskManifest(snapshot: bytes)
        #expect(restored.snapshot() == bytes)
        #expect(restored.tasks == m.tasks)
        #expect(restored.agents == m.agents)
        #expect(restored.pending == m.pending)
        #expect(restored.counts.filter { $0.value != 0 } == m.counts.filter { $0.value != 0 })
        #expect(restored.activeByAgent == m.activeByAgent)
        // The idempotency keys survive too.
        var copy = restored
        #expect(copy.apply(.submit(key: "x", spec: spec(), count: 4, at: 20)) == .submitted(first: 1, count: 4, existing: true))
        // Corrupt bytes are an error, not a crash.
        #expect(throws: MalformedData.self) { try TaskManifest(snapshot: Array(bytes.dropLast(3))) }
    }
}

@Suite struct SchedulerTests {
    @Test func placesOnLeastLoadedPreferringZoneAndFreshAgents() {
        var m = TaskManifest()
        join(&m, "a1", zone: "aws", slots: 2)
        join(&m, "g1", zone: "gcp", slots: 2)
        apply(&m, .submit(key: "", spec: spec(zone: "gcp"), count: 1, at: 1))
        apply(&m, .submit(key: "", spec: spec(), count: 3, at: 1))
        let beats: [AgentID: LeaderView.Heartbeat] = ["a1": .init(at: 100, incarnation: 1), "g1": .init(at: 100, incarnation: 1)]
        let duties = Scheduler.duties(manifest: m, view: LeaderView(now: 100, leaderSince: 0, heartbeats: beats), config: SchedulerConfig())
        #expect(duties == [
            .assign(task: 1, attempt: 1, agent: "g1", at: 100),  // its zone
            .assign(task: 2, attempt: 1, agent: "a1", at: 100),  // least loaded
            .assign(task: 3, attempt: 1, agent: "a1", at: 100),  // a1 0.5 vs g1 0.5: tie → id order
            .assign(task: 4, attempt: 1, agent: "g1", at: 100),
        ])
        for d in duties { #expect(apply(&m, d) == .done) }
        #expect(Scheduler.duties(manifest: m, view: LeaderView(now: 101, leaderSince: 0, heartbeats: beats), config: SchedulerConfig()).isEmpty)
    }

    @Test func retriedTaskGoesToAnotherAgent() {
        var m = TaskManifest()
        join(&m, "a1")
        join(&m, "a2")
        apply(&m, .submit(key: "", spec: spec(), count: 1, at: 1))
        apply(&m, .assign(task: 1, attempt: 1, agent: "a1", at: 2))
        apply(&m, .fail(task: 1, attempt: 1, agent: "a1", reason: "x", at: 3))
        let beats: [AgentID: LeaderView.Heartbeat] = ["a1": .init(at: 4, incarnation: 1), "a2": .init(at: 4, incarnation: 1)]
        #expect(Scheduler.duties(manifest: m, view: LeaderView(now: 4, leaderSince: 0, heartbeats: beats), config: SchedulerConfig())
            == [.assign(task: 1, attempt: 2, agent: "a2", at: 4)])
    }

    @Test func silentAgentsAreDeclaredDeadAfterTheGracePeriod() {
        var m = TaskManifest()
        join(&m, "a1")
        join(&m, "a2")
        var config = SchedulerConfig()
        config.deadAfter = 1_000
        // A new leader at t=10,000 has heard from a2 only. Within the grace period nobody dies,
        // and only a2 gets work.
        apply(&m, .submit(key: "", spec: spec(), count: 2, at: 1))
        let beats: [AgentID: LeaderView.Heartbeat] = ["a2": .init(at: 10_500, incarnation: 1)]
        #expect(Scheduler.duties(manifest: m, view: LeaderView(now: 10_900, leaderSince: 10_000, heartbeats: beats), config: config)
            == [.assign(task: 1, attempt: 1, agent: "a2", at: 10_900)])
        // After it, a1 is declared dead.
        let later = Scheduler.duties(manifest: m, view: LeaderView(now: 11_001, leaderSince: 10_000, heartbeats: beats), config: config)
        #expect(later.first == .agentDead(agent: "a1", reason: "no heartbeat since this leader took over", at: 11_001))
        // A heartbeat from an old incarnation does not count.
        let stale: [AgentID: LeaderView.Heartbeat] = ["a1": .init(at: 11_000, incarnation: 0), "a2": .init(at: 11_000, incarnation: 1)]
        #expect(Scheduler.duties(manifest: m, view: LeaderView(now: 11_500, leaderSince: 10_000, heartbeats: stale), config: config)
            .contains(.agentDead(agent: "a1", reason: "no heartbeat since this leader took over", at: 11_500)))
    }

    @Test func timedOutAttemptsAreFailed() {
        var m = TaskManifest()
        join(&m, "a1")
        var s = spec()
        s.timeoutMillis = 50
        apply(&m, .submit(key: "", spec: s, count: 1, at: 1))
        apply(&m, .assign(task: 1, attempt: 1, agent: "a1", at: 100))
        let beats: [AgentID: LeaderView.Heartbeat] = ["a1": .init(at: 200, incarnation: 1)]
        let duties = Scheduler.duties(manifest: m, view: LeaderView(now: 200, leaderSince: 0, heartbeats: beats), config: SchedulerConfig())
        #expect(duties == [.fail(task: 1, attempt: 1, agent: "a1", reason: "timed out after 50 ms", at: 200)])
    }

    @Test func configProblems() {
        var c = SchedulerConfig()
        #expect(c.problem == nil)
        c.deadAfter = c.heartbeatInterval
        #expect(c.problem != nil)
    }
}
