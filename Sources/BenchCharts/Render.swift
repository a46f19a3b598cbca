import Dispatch
import Foundation

/// Runs gnuplot on a written chart's script, in the chart's folder, and returns the paths of the
/// rendered PNG and SVG.
///
/// - Parameters:
///   - gnuplot: the executable: a name looked up on PATH ("gnuplot") or a path.
///   - timeoutSeconds: gnuplot is stopped (SIGTERM) and `.timedOut` thrown after this long.
/// - Throws: `.gnuplotNotFound` (install gnuplot-nox), `.gnuplotFailed` with gnuplot's messages,
///   `.timedOut`, `.missingOutput`.
@discardableResult
public func render(_ files: ChartFiles, gnuplot: String = "gnuplot", timeoutSeconds: Int = 60) throws(ChartError)
    -> [String]
{
    guard let executable = findExecutable(gnuplot) else { throw .gnuplotNotFound(gnuplot) }
    let scriptName = URL(fileURLWithPath: files.script).lastPathComponent

    // stderr goes to a temporary file rather than a pipe: nothing to drain while waiting, so a
    // chatty gnuplot cannot block on a full pipe.
    let errorsURL = FileManager.default.temporaryDirectory
        .appendingPathComponent("bench-gnuplot-\(UUID().uuidString).stderr")
    guard FileManager.default.createFile(atPath: errorsURL.path, contents: nil),
        let errors = try? FileHandle(forWritingTo: errorsURL)
    else {
        throw .cannotWrite(path: errorsURL.path, reason: "cannot create a file for gnuplot's messages")
    }
    defer {
        try? errors.close()
        try? FileManager.default.removeItem(at: errorsURL)
    }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = [scriptName]
    process.currentDirectoryURL = URL(fileURLWithPath: files.directory)
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle.nullDevice
    process.standardError = errors
    let finished = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in finished.signal() }
    do {
        try process.run()
    } catch {
        throw .gnuplotFailed(script: files.script, status: -1, output: "could not start \(executable): \(error)")
    }
    if finished.wait(timeout: .now() + .seconds(timeoutSeconds)) == .timedOut {
        process.terminate()
        _ = finished.wait(timeout: .now() + .seconds(5))
        throw .timedOut(script: files.script, seconds: timeoutSeconds)
    }
    let messages = String(decoding: (try? Data(contentsOf: errorsURL)) ?? Data(), as: UTF8.self)
        .trimmingCharacters(in: .whitespacesAndNewlines)
    guard process.terminationReason == .exit, process.terminationStatus == 0 else {
        throw .gnuplotFailed(script: files.script, status: process.terminationStatus, output: String(messages.suffix(2000)))
    }
    for path in [files.png, files.svg] {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        if size == 0 { throw .missingOutput(path: path) }
    }
    return [files.png, files.svg]
}

/// Writes a chart (`writeChart`) and renders it (`render`). When rendering fails the script and
/// data stay in place, so the error can be reproduced with `gnuplot <stem>.gp`.
@discardableResult
public func drawChart(
    _ chart: Chart, directory: String, gnuplot: String = "gnuplot", timeoutSeconds: Int = 60
) throws(ChartError) -> ChartFiles {
    let files = try writeChart(chart, directory: directory)
    try render(files, gnuplot: gnuplot, timeoutSeconds: timeoutSeconds)
    return files
}

/// True if `gnuplot` names an executable: a path, or a name found on PATH.
public func gnuplotAvailable(_ gnuplot: String = "gnuplot") -> Bool {
    findExecutable(gnuplot) != nil
}

/// The absolute path of `name`: itself if it contains '/', else the first match on PATH.
func findExecutable(_ name: String) -> String? {
    let fileManager = FileManager.default
    if name.contains("/") {
        return fileManager.isExecutableFile(atPath: name) ? name : nil
    }
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    for folder in path.split(separator: ":") where !folder.isEmpty {
        let candidate = folder + "/" + name
        var isDirectory: ObjCBool = false
        if fileManager.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
            fileManager.isExecutableFile(atPath: candidate)
        {
            return candidate
        }
    }
    return nil
}
