import Dispatch

/// Runs CPU-bound `work` on a Dispatch worker thread and waits for it without holding a thread
/// of Swift's cooperative pool. That pool has one thread per core: seeds run on it would leave
/// every other task of the process (a test's gRPC calls, a progress printer) waiting behind
/// seconds of simulation, long enough for their own timeouts to fire. The kernel shares the
/// cores between Dispatch's threads and the pool's instead.
func runOffCooperativePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: work()) }
    }
}

/// Runs many seeds, spread over the machine's cores, and summarises them.
public enum SimulationRunner {
    public struct Summary: Sendable {
        public var seedsRun = 0
        /// Failing seeds, in seed order, each replayed once more with its trace.
        public var failures: [SimulationResult] = []
        public var stats = SimulationStats()
        public var violations: Int { failures.count }
    }

    /// Runs `seeds` with `options`. Seeds run without a trace (it costs time); a failing seed is
    /// run again with one, which the determinism of the simulator makes exact.
    public static func run(
        seeds: Range<UInt64>, options: SimulationOptions, jobs: Int,
        progress: (@Sendable (_ done: Int, _ failures: Int) -> Void)? = nil
    ) async -> Summary {
        var untraced = options
        untraced.traceLength = 0
        let fast = untraced
        var summary = Summary()
        let jobs = max(1, jobs)
        // One seed per task, at most `jobs` at a time, each on a Dispatch worker thread (see
        // ``runOffCooperativePool(_:)``).
        await withTaskGroup(of: SimulationResult.self) { group in
            var next = seeds.lowerBound
            func addSeed() {
                guard next < seeds.upperBound else { return }
                let seed = next
                next += 1
                group.addTask { await runOffCooperativePool { Simulator(seed: seed, options: fast).run() } }
            }
            for _ in 0..<jobs { addSeed() }
            while let r = await group.next() {
                summary.seedsRun += 1
                summary.stats.add(r.stats)
                if r.violation != nil {
                    let seed = r.seed
                    summary.failures.append(await runOffCooperativePool { Simulator(seed: seed, options: options).run() })
                }
                if summary.seedsRun % 64 == 0 || summary.seedsRun == seeds.count { progress?(summary.seedsRun, summary.failures.count) }
                addSeed()
            }
        }
        summary.failures.sort { $0.seed < $1.seed }
        return summary
    }
}
