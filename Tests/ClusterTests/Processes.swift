import Foundation

/// Runs `executable` with `arguments`, standard output and error captured together, and returns
/// its exit status and output; terminates it after `timeout` seconds or when the calling task is
/// cancelled.
///
/// It waits with `Task.sleep`, never blocking a thread: swift-testing runs suites in parallel on
/// Swift's cooperative pool, which has one thread per core. A test blocked in `waitUntilExit`
/// for the length of a `bench` run held one of this machine's two threads; with another one
/// blocked the same way, the other tests' gRPC calls waited tens of seconds to resume and gave up.
func runProcess(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Double
) async throws -> (status: Int32, output: String) {
    let outputPath = NSTemporaryDirectory() + "flotilla-out-\(UUID().uuidString)"
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    defer { try? FileManager.default.removeItem(atPath: outputPath) }
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    defer { try? output.close() }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let deadline = Date().addingTimeInterval(timeout)
    do {
        while process.isRunning && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
    } catch {
        process.terminate()
        throw error
    }
    if process.isRunning {
        process.terminate()
        // SIGTERM first; a process that ignores it for 10 s is killed.
        let grace = Date().addingTimeInterval(10)
        while process.isRunning && Date() < grace { try? await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        while process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }
    return (process.terminationStatus, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
}

/// Runs `cleanup` whether `body` returns or throws, and even when the test's task is cancelled
/// (its time limit): the cleanup runs in a task of its own, which does not inherit the
/// cancellation, so that it can wait for what it stops.
func withCleanup(_ body: () async throws -> Void, cleanup: @escaping @Sendable () async -> Void) async throws {
    do {
        try await body()
    } catch {
        await Task { await cleanup() }.value
        throw error
    }
    await Task { await cleanup() }.value
}

/// SIGKILLs every process whose command line contains `text` (never this one).
func killProcesses(mentioning text: String) {
    let me = ProcessInfo.processInfo.processIdentifier
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(entry), pid != me,
            let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
        else { continue }
        let commandLine = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        if commandLine.contains(text) { kill(pid, SIGKILL) }
    }
}
