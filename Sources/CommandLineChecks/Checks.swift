public import ArgumentParser

// The checks every command's `validate()` makes of its options, in `flotilla` and `bench` alike,
// with one message format: "--trials must be between 1 and 1000, not 0". A refused value stops
// the command before it starts anything (exit status 64, with the usage).

/// Refuses `value` outside `range`; nil (an optional option not given) passes.
/// - Parameters:
///   - name: the option as the user types it (`--trials`) or a positional argument (`<id>`).
///   - unit: appended to the range ("seconds"), if any.
///   - why: appended in parentheses, when the range depends on another option.
public func checkRange<T: Comparable>(_ value: T?, _ name: String, _ range: ClosedRange<T>, unit: String = "", why: String? = nil) throws {
    guard let value, !range.contains(value) else { return }
    throw ValidationError(
        "\(name) must be between \(show(range.lowerBound)) and \(show(range.upperBound))\(unit.isEmpty ? "" : " " + unit), not \(show(value))"
            + (why.map { " (\($0))" } ?? ""))
}

/// Refuses `value` below `range.lowerBound` (for ids, where any larger value may exist).
public func checkRange<T: Comparable>(_ value: T?, _ name: String, _ range: PartialRangeFrom<T>) throws {
    guard let value, !range.contains(value) else { return }
    throw ValidationError("\(name) must be at least \(show(range.lowerBound)), not \(show(value))")
}

/// Refuses a string option that is not one of `choices`; nil passes.
public func checkChoice(_ value: String?, _ name: String, _ choices: [String]) throws {
    guard let value, !choices.contains(value) else { return }
    throw ValidationError("\(name) must be one of \(choices.joined(separator: ", ")), not '\(value)'")
}

/// Refuses a string option whose UTF-8 length is outside `bytes`; nil passes.
public func checkLength(_ value: String?, _ name: String, _ bytes: ClosedRange<Int>) throws {
    guard let value, !bytes.contains(value.utf8.count) else { return }
    throw ValidationError("\(name) must have \(bytes.lowerBound) to \(bytes.upperBound) bytes, not \(value.utf8.count)")
}

/// A value as the user would type it: 60 rather than 60.0.
private func show<T>(_ value: T) -> String {
    if let d = value as? Double, d.isFinite, d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
    return "\(value)"
}
