import Benchmark
import Raft

// Micro-benchmarks of the Raft core. Every benchmark runs 1,000 operations per iteration
// (`scalingFactor: .kilo`), and the table shows figures per operation (`*` columns): throughput is
// operations per second, where an operation is one proposal committed, one message stepped or one
// persist call. Each iteration builds fresh state before `startMeasurement()` and drops it after
// `stopMeasurement()`, so only the operations are timed, iterations are independent, and the log
// never grows beyond what one iteration appends.

/// Operations per iteration; must match `scalingFactor` below.
let operationsPerIteration = BenchmarkScalingFactor.kilo.rawValue

/// A 128-byte client command. All proposals share this one buffer: the core treats commands as
/// opaque bytes, and building a fresh array per proposal would measure the client, not Raft.
let command = [UInt8](repeating: 0xAB, count: 128)

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        // `.instructions` needs perf counters, which this VM lacks; `.cpuTotal` has a 10 ms
        // resolution here, useless at these scales.
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 10_000
    )

    // 1. End to end: proposals committed by a 3-node cluster in memory. The leader's log, both
    //    followers' logs, three MemoryStorages, all messages and the leader's apply are measured.
    for batch in [1, 64] {
        Benchmark(
            "Raft: proposals committed, 3-node in-memory cluster, batch \(batch)"
        ) { benchmark throws in
            precondition(benchmark.scaledIterations.count == operationsPerIteration)
            var cluster = try InMemoryCluster.withLeader(1)
            // 1,000 proposals in batches of `batch` (for 64: 15 batches of 64, then one of 40).
            let batches = stride(from: 0, to: operationsPerIteration, by: batch).map {
                Array(repeating: command, count: min(batch, operationsPerIteration - $0))
            }
            let commandsBefore = cluster.appliedCommands[0]

            benchmark.startMeasurement()
            for commands in batches {
                let last = try cluster.propose(commands, on: 1)
                guard cluster.pump(untilApplied: last, on: 1) else {
                    fatalError("proposal \(last) was not applied on the leader")
                }
            }
            benchmark.stopMeasurement()

            precondition(cluster.appliedCommands[0] - commandsBefore == operationsPerIteration)
            blackHole(cluster)
        }
    }

    // 2. The follower's hot path: `step` of one append message that extends its log by
    //    `entries` commands and advances its commit index. No Ready is taken in between (the
    //    responses queue up in the node), so this is the cost of `step` alone.
    for entries in [1, 64] {
        Benchmark(
            "Raft: step of one append message on a follower, \(entries == 1 ? "1 entry" : "\(entries) entries")"
        ) { benchmark, appends in
            var follower = makeFollower()
            follower.step(appends.first)  // term 0 → 1 and the leader's empty entry, unmeasured

            benchmark.startMeasurement()
            for m in appends.rest {
                follower.step(m)
            }
            benchmark.stopMeasurement()

            precondition(follower.lastIndex == 1 + Index(operationsPerIteration * entries))
            blackHole(follower)
        } setup: {
            makeAppends(count: operationsPerIteration, entriesPerMessage: entries)
        }
    }

    // 3. Storage: `MemoryStorage.persist` of a Ready carrying 64 new entries (and a hard state),
    //    appended after the previous ones, as a follower's shell does for each batch it receives.
    //    (`RaftLog` itself is internal to the Raft module; its side of persisting,
    //    `RaftNode.advance`, is covered by benchmark 1.)
    Benchmark("MemoryStorage: persist 64 entries") { benchmark, readies in
        var storage = MemoryStorage()

        benchmark.startMeasurement()
        for rd in readies {
            storage.persist(rd)
        }
        benchmark.stopMeasurement()

        precondition(storage.lastIndex == Index(operationsPerIteration * 64))
        blackHole(storage)
    } setup: {
        makeReadies(count: operationsPerIteration, entriesPerReady: 64)
    }
}

/// Node 2 of a brand-new cluster {1, 2, 3}.
func makeFollower() -> RaftNode {
    do {
        return try RaftNode(
            config: RaftConfig(id: 2), bootstrap: Configuration(voters: [1, 2, 3]), random: SplitMix64(seed: 2))
    } catch {
        fatalError("cannot create a follower: \(error)")
    }
}

/// What node 1, leader of term 1, sends node 2: first its empty entry at index 1, then `count`
/// appends of `entriesPerMessage` commands each, every one following the previous and carrying
/// the commit index up to the entries the follower already has.
func makeAppends(count: Int, entriesPerMessage: Int) -> (first: Message, rest: [Message]) {
    let term: Term = 1
    let first = Message(
        from: 1, to: 2, term: term,
        payload: .append(AppendRequest(
            prevIndex: 0, prevTerm: 0, entries: [Entry(term: term, index: 1, payload: .empty)], commit: 0)))
    var rest: [Message] = []
    rest.reserveCapacity(count)
    var last: Index = 1
    for _ in 0..<count {
        let entries = (1...Index(entriesPerMessage)).map { Entry(term: term, index: last + $0, payload: .command(command)) }
        rest.append(Message(
            from: 1, to: 2, term: term,
            payload: .append(AppendRequest(prevIndex: last, prevTerm: term, entries: entries, commit: last))))
        last += Index(entriesPerMessage)
    }
    return (first, rest)
}

/// `count` Readies of `entriesPerReady` consecutive command entries each, starting at index 1, each
/// with the hard state a follower would persist alongside.
func makeReadies(count: Int, entriesPerReady: Int) -> [Ready] {
    var readies: [Ready] = []
    readies.reserveCapacity(count)
    var last: Index = 0
    for _ in 0..<count {
        var rd = Ready()
        rd.entries = (1...Index(entriesPerReady)).map { Entry(term: 1, index: last + $0, payload: .command(command)) }
        rd.hardState = HardState(term: 1, vote: 1, commit: last)
        readies.append(rd)
        last += Index(entriesPerReady)
    }
    return readies
}
