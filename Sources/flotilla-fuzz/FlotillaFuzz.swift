// `flotilla-fuzz`: the fuzz targets of `FuzzTargets` as one program.
//
// Built by `make fuzz` with `-sanitize=fuzzer,address -DFUZZING` it is a libFuzzer binary: the
// target comes from FLOTILLA_FUZZ_TARGET, every other argument is libFuzzer's (corpus folders,
// -max_total_time=..., -seed=...). Built plainly (as `swift build` does) it writes seed corpora
// and replays inputs, so a crash file can be re-run under a debugger without the fuzzer.
import FuzzTargets

#if FUZZING
import Foundation

private let target: FuzzTarget = {
    let name = ProcessInfo.processInfo.environment["FLOTILLA_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(
            Data("set FLOTILLA_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    return target
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    do {
        try target.run(bytes)
    } catch {
        // A broken property is a crash to libFuzzer: it keeps the input.
        fatalError("\(target.rawValue): \(error)")
    }
    return 0
}
#else
import Foundation

@main
struct FlotillaFuzz {
    static func main() {
        let args = Array(CommandLine.arguments.dropFirst())
        let usage = """
            usage: flotilla-fuzz seeds TARGET DIR      write TARGET's seed inputs into DIR
                   flotilla-fuzz replay TARGET PATH... run TARGET on each file (or every file of a folder)
            targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))
            (`make fuzz` builds this program with libFuzzer; see docs/testing.md)
            """
        guard args.count >= 3, let target = FuzzTarget(rawValue: args[1]) else {
            print(usage)
            exit(args.isEmpty ? 0 : 64)
        }
        switch args[0] {
        case "seeds":
            let dir = args[2]
            try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            for (k, seed) in target.seeds.enumerated() {
                FileManager.default.createFile(atPath: "\(dir)/seed-\(k)", contents: Data(seed))
            }
            print("\(target.seeds.count) seeds in \(dir)")
        case "replay":
            var count = 0
            for path in args[2...] {
                var isDirectory: ObjCBool = false
                FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
                let files = isDirectory.boolValue
                    ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { "\(path)/\($0)" } : [path]
                for file in files {
                    guard let data = FileManager.default.contents(atPath: file) else { continue }
                    do {
                        try target.run([UInt8](data))
                    } catch {
                        print("\(file): \(error)")
                        exit(1)
                    }
                    count += 1
                }
            }
            print("\(target.rawValue): \(count) inputs, no finding")
            exit(0)
        default:
            print(usage)
            exit(64)
        }
    }
}
#endif
