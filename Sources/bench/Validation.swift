import ArgumentParser
import Foundation
import Manifest

// The checks every command's `validate()` makes of its options, with one message format:
// "--trials must be between 1 and 1000, not 0". A refused value stops the command before it
// starts anything (exit status 64, with the usage). `bench all` builds its phases with
// `.parse([])`, which validates their defaults the same way.

/// The control-plane nodes a phase's local cluster may have (as `flotilla cluster up`: 1...9).
let localClusterNodes = 1...9
/// Matrix sizes: what a task may ask for; whether memory allows it is checked when it runs.
let matrixSizes = 1...Int(TaskSpec.maxSize)

/// The integers of a comma-separated list, each in `range` (at least one).
func parseList(_ text: String, _ name: String, range: ClosedRange<Int>) throws -> [Int] {
    let values = text.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
    guard !values.isEmpty, values.allSatisfy({ $0 != nil && range.contains($0!) }) else {
        throw ValidationError("--\(name) must be comma-separated integers between \(range.lowerBound) and \(range.upperBound), not '\(text)'")
    }
    return values.map { $0! }
}

/// Refuses `value` outside `range`; nil (an optional option not given) passes.
/// - Parameters:
///   - name: the option as the user types it (`--trials`) or a positional argument (`<id>`).
///   - unit: appended to the range ("seconds"), if any.
///   - why: appended in parentheses, when the range depends on another option.
func checkRange<T: Comparable>(_ value: T?, _ name: String, _ range: ClosedRange<T>, unit: String = "", why: String? = nil) throws {
    guard let value, !range.contains(value) else { return }
    throw ValidationError(
        "\(name) must be between \(show(range.lowerBound)) and \(show(range.upperBound))\(unit.isEmpty ? "" : " " + unit), not \(show(value))"
            + (why.map { " (\($0))" } ?? ""))
}

/// Refuses `value` below `range.lowerBound` (for ids, where any larger value may exist).
func checkRange<T: Comparable>(_ value: T?, _ name: String, _ range: PartialRangeFrom<T>) throws {
    guard let value, !range.contains(value) else { return }
    throw ValidationError("\(name) must be at least \(show(range.lowerBound)), not \(show(value))")
}

/// Refuses a string option that is not one of `choices`; nil passes.
func checkChoice(_ value: String?, _ name: String, _ choices: [String]) throws {
    guard let value, !choices.contains(value) else { return }
    throw ValidationError("\(name) must be one of \(choices.joined(separator: ", ")), not '\(value)'")
}

/// Refuses a string option whose UTF-8 length is outside `bytes`; nil passes.
func checkLength(_ value: String?, _ name: String, _ bytes: ClosedRange<Int>) throws {
    guard let value, !bytes.contains(value.utf8.count) else { return }
    throw ValidationError("\(name) must have \(bytes.lowerBound) to \(bytes.upperBound) bytes, not \(value.utf8.count)")
}

/// A value as the user would type it: 60 rather than 60.0.
private func show<T>(_ value: T) -> String {
    if let d = value as? Double, d.isFinite, d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
    return "\(value)"
}
