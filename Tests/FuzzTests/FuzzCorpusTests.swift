import Foundation
import FuzzTargets
import Raft
import Testing

/// Every fuzz target over its seeds, its committed corpus (`Fuzz/corpus/TARGET`), every input a
/// fuzzer ever crashed it with (`Fuzz/regressions/TARGET`, kept forever), and a few hundred seeded
/// mutations of those: the short run of each target in plain `swift test`. `make fuzz` runs the
/// coverage-guided fuzzer itself.
@Suite(.timeLimit(.minutes(5)))
struct FuzzCorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz")

    static func files(_ folder: String, _ target: FuzzTarget) -> [(String, [UInt8])] {
        let dir = root.appendingPathComponent(folder).appendingPathComponent(target.rawValue)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        return names.compactMap { name in
            FileManager.default.contents(atPath: dir.appendingPathComponent(name).path).map { ("\(folder)/\(target.rawValue)/\(name)", [UInt8]($0)) }
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func seedsCorpusAndRegressionsPass(target: FuzzTarget) async throws {
        let inputs = target.seeds.enumerated().map { ("seed \($0.offset)", $0.element) }
            + Self.files("corpus", target) + Self.files("regressions", target)
        #expect(!target.seeds.isEmpty)
        for (name, bytes) in inputs {
            do {
                try await target.check(bytes)
            } catch {
                Issue.record("\(target.rawValue) \(name): \(error)")
            }
        }
    }

    /// Seeded byte-level mutations of the seeds (flip, insert, delete, splice, extreme integers):
    /// a deterministic stand-in for the fuzzer that every `swift test` runs.
    @Test(arguments: FuzzTarget.allCases)
    func mutatedSeedsPass(target: FuzzTarget) async throws {
        var random = SplitMix64(seed: 0xF1_0771_1A)
        let seeds = target.seeds
        let rounds = target == .requests ? 150 : 400
        for round in 0..<rounds {
            var bytes = seeds[Int(random.next() % UInt64(seeds.count))]
            for _ in 0...(random.next() % 4) { mutate(&bytes, &random, splice: seeds) }
            do {
                try await target.check(bytes)
            } catch {
                Issue.record("\(target.rawValue) round \(round) (\(bytes.count) bytes: \(bytes.prefix(64).map { String($0) }.joined(separator: ","))): \(error)")
            }
        }
    }
}

/// One random edit of `bytes`.
func mutate(_ bytes: inout [UInt8], _ random: inout SplitMix64, splice: [[UInt8]]) {
    let extremes: [[UInt8]] = [[0xFF, 0xFF, 0xFF, 0xFF], [0x7F, 0xFF, 0xFF, 0xFF], [0, 0, 0, 0], [0x80, 0, 0, 0],
                               [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]]
    let at = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count))
    switch random.next() % 6 {
    case 0 where !bytes.isEmpty: bytes[at] ^= UInt8(1 << (random.next() % 8))
    case 1: bytes.insert(UInt8(truncatingIfNeeded: random.next()), at: at)
    case 2 where !bytes.isEmpty: bytes.removeSubrange(at..<min(bytes.count, at + 1 + Int(random.next() % 8)))
    case 3:
        let e = extremes[Int(random.next() % UInt64(extremes.count))]
        bytes.replaceSubrange(at..<min(bytes.count, at + e.count), with: e)
    case 4:
        let other = splice[Int(random.next() % UInt64(splice.count))]
        let from = other.isEmpty ? 0 : Int(random.next() % UInt64(other.count))
        bytes = Array(bytes[..<at]) + other[from...]
    default: if !bytes.isEmpty { bytes[at] = UInt8(truncatingIfNeeded: random.next()) }
    }
}
