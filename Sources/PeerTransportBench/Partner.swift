import Foundation
import Synchronization

/// CPU time consumed by this process so far (all threads), and its context switches (voluntary
/// and involuntary: each thread hand-off that blocks costs one), from `getrusage(RUSAGE_SELF)`.
struct CPUTime: Sendable {
    var user: Duration
    var system: Duration
    var contextSwitches: Int
    var total: Duration { user + system }

    static func ofSelf() -> CPUTime {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func duration(_ t: timeval) -> Duration { .seconds(Int64(t.tv_sec)) + .microseconds(Int64(t.tv_usec)) }
        return CPUTime(
            user: duration(usage.ru_utime), system: duration(usage.ru_stime),
            contextSwitches: Int(usage.ru_nvcsw + usage.ru_nivcsw))
    }

    static func - (a: CPUTime, b: CPUTime) -> CPUTime {
        CPUTime(user: a.user - b.user, system: a.system - b.system, contextSwitches: a.contextSwitches - b.contextSwitches)
    }
}

extension Duration {
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
    var microseconds: Double { seconds * 1e6 }
}

/// Blocking line reads from a file descriptor (a pipe).
final class LineReader: Sendable {
    private let fd: Int32
    private let buffer = Mutex<[UInt8]>([])

    init(fd: Int32) { self.fd = fd }

    /// The next line without its newline; nil at end of file. Blocks the calling thread.
    func readLine() -> String? {
        buffer.withLock { buffer in
            while true {
                if let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: buffer[..<newline], as: UTF8.self)
                    buffer.removeSubrange(...newline)
                    return line
                }
                var chunk = [UInt8](repeating: 0, count: 4096)
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return nil }
                buffer.append(contentsOf: chunk[..<n])
            }
        }
    }

    /// `readLine()` on a thread of its own, so a wait never blocks one of the (two) threads of
    /// Swift's cooperative pool.
    func nextLine() async -> String? {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: self.readLine()) }
        }
    }
}

/// What the follower reports when asked to `mark`: its CPU time and what it received so far.
struct FollowerMark: Sendable {
    var cpu: CPUTime
    var batchesIn: Int
    var messagesIn: Int

    var line: String {
        "mark \(Int64(cpu.user.microseconds.rounded())) \(Int64(cpu.system.microseconds.rounded())) \(cpu.contextSwitches)"
            + " \(batchesIn) \(messagesIn)"
    }

    init(cpu: CPUTime, batchesIn: Int, messagesIn: Int) {
        self.cpu = cpu
        self.batchesIn = batchesIn
        self.messagesIn = messagesIn
    }

    init?(line: String) {
        let f = line.split(separator: " ")
        guard f.count == 6, f[0] == "mark", let u = Int64(f[1]), let s = Int64(f[2]), let c = Int(f[3]),
            let b = Int(f[4]), let m = Int(f[5])
        else { return nil }
        self.init(cpu: CPUTime(user: .microseconds(u), system: .microseconds(s), contextSwitches: c), batchesIn: b, messagesIn: m)
    }
}

/// The follower process, spawned from this executable. Control protocol over its stdin/stdout:
/// it prints `port N` once listening; each `mark` line on its stdin is answered with a
/// ``FollowerMark`` line; end of file on its stdin (this process closing it, or dying) makes it exit.
final class Partner {
    private let process = Process()
    private let input = Pipe()
    private let output = Pipe()
    private let reader: LineReader
    private var stopped = false
    let port: Int

    var pid: Int32 { process.processIdentifier }

    /// Spawns the follower for `transport` and waits until it listens.
    init(transport: TransportKind, leaderPort: Int) async throws {
        process.executableURL = URL(fileURLWithPath: Self.executablePath)
        process.arguments = ["--transport", transport.rawValue, "--follower-of", String(leaderPort)]
        process.standardInput = input
        process.standardOutput = output
        // stderr is inherited: the follower's errors show up in this terminal.
        reader = LineReader(fd: output.fileHandleForReading.fileDescriptor)
        try process.run()
        guard let line = await reader.nextLine(), line.hasPrefix("port "), let port = Int(line.dropFirst(5)) else {
            port = 0
            stop()
            throw BenchError("the follower process did not report its port")
        }
        self.port = port
    }

    /// The follower's CPU time and receive counters now.
    func mark() async throws -> FollowerMark {
        try input.fileHandleForWriting.write(contentsOf: Array("mark\n".utf8))
        guard let line = await reader.nextLine(), let mark = FollowerMark(line: line) else {
            throw BenchError("the follower process did not answer `mark`")
        }
        return mark
    }

    /// Ends the follower: closes its stdin, then SIGTERM, then SIGKILL if it lingers; reaps it.
    func stop() {
        guard !stopped else { return }
        stopped = true
        try? input.fileHandleForWriting.close()
        func exited(within seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while process.isRunning && Date() < deadline { usleep(5_000) }
            return !process.isRunning
        }
        if !exited(within: 3) {
            process.terminate()
            if !exited(within: 2) { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
    }

    deinit { stop() }

    static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}
