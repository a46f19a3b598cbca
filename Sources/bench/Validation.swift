import ArgumentParser
// The shared checks (checkRange, checkChoice, checkLength) for every file of this executable.
@_exported import CommandLineChecks
import Foundation
import Manifest

// The ranges bench's options are checked against (the checks: `CommandLineChecks`). `bench all`
// builds its phases with `.parse([])`, which validates their defaults the same way.

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
