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
        let chunk: UInt64 = 64
        await withTaskGroup(of: [SimulationResult].self) { group in
            var next = seeds.lowerBound
            func addChunk() {
                guard next < seeds.upperBound else { return }
                let range = next..<min(next + chunk, seeds.upperBound)
                next = range.upperBound
                group.addTask { range.map { Simulator(seed: $0, options: fast).run() } }
            }
            for _ in 0..<jobs { addChunk() }
            while let results = await group.next() {
                for r in results {
                    summary.seedsRun += 1
                    summary.stats.add(r.stats)
                    if r.violation != nil { summary.failures.append(Simulator(seed: r.seed, options: options).run()) }
                }
                progress?(summary.seedsRun, summary.failures.count)
                addChunk()
            }
        }
        summary.failures.sort { $0.seed < $1.seed }
        return summary
    }
}
