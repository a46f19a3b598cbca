import Foundation
import Synchronization

/// One measured value, as a phase produces it (stored as a sample of the run).
struct Measurement: Sendable {
    var metric: String
    var unit: String
    var value: Double
    var labels: [String: String] = [:]
    var warmup = false
    /// Seconds since the phase started (or, for timelines, relative to an event).
    var at: Double? = nil
}

/// What a phase hands back: its raw measurements and notes for the report.
struct PhaseOutput: Sendable {
    var measurements: [Measurement] = []
    var notes: [String] = []
    /// The cluster configuration the phase ran (YAML), if it started one.
    var clusterConfig = ""
    /// Set when the phase measured everything but a guarantee broke (the chaos suite's verdict):
    /// the samples are stored, the run is marked failed, and bench exits with this message.
    var failure: String?

    mutating func add(_ metric: String, _ unit: String, _ value: Double, _ labels: [String: String] = [:], warmup: Bool = false, at: Double? = nil) {
        measurements.append(Measurement(metric: metric, unit: unit, value: value, labels: labels, warmup: warmup, at: at))
    }

    func values(_ metric: String, where match: [String: String] = [:], includeWarmup: Bool = false) -> [Double] {
        measurements.filter { m in
            m.metric == metric && (includeWarmup || !m.warmup) && match.allSatisfy { m.labels[$0.key] == $0.value }
        }.map(\.value)
    }
}

/// Reports progress: a line rewritten in place on a terminal, plain lines otherwise (CI, pipes).
final class Progress: Sendable {
    private let interactive = isatty(STDERR_FILENO) == 1
    private let quiet: Bool
    private let state = Mutex((lastLength: 0, started: Date()))

    init(quiet: Bool) { self.quiet = quiet }

    func begin(_ phase: String) {
        state.withLock { $0.started = Date() }
        line("[\(phase)] starting")
    }

    /// `done` of `total` steps finished; estimates the time left from the pace so far.
    func step(_ phase: String, _ what: String, done: Int, total: Int) {
        let elapsed = Date().timeIntervalSince(state.withLock { $0.started })
        let left = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let text = String(format: "[%@] %@ — %d/%d, %.0f s elapsed%@", phase, what, done, total, elapsed,
            done > 0 && done < total ? String(format: ", ~%.0f s left", left) : "")
        if interactive && !quiet {
            let pad = state.withLock { s -> Int in
                defer { s.lastLength = text.count }
                return max(0, s.lastLength - text.count)
            }
            FileHandle.standardError.write(Data(("\r" + text + String(repeating: " ", count: pad)).utf8))
        } else {
            line(text)
        }
    }

    func line(_ text: String) {
        guard !quiet else { return }
        let pending = state.withLock { s -> Bool in
            defer { s.lastLength = 0 }
            return s.lastLength > 0
        }
        if interactive && pending { FileHandle.standardError.write(Data("\n".utf8)) }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
