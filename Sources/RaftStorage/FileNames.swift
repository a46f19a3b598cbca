/// File names of the form `<16 hex digits>-<16 hex digits><suffix>`, which sort like the numbers
/// they hold: log segments (`<sequence>-<firstIndex>.log`) and snapshots (`<term>-<index>.snap`).
enum FileNames {
    static func make(_ first: UInt64, _ second: UInt64, suffix: String) -> String {
        hex(first) + "-" + hex(second) + suffix
    }

    /// The two numbers in `name`, or nil if it is not of the form above.
    static func parse(_ name: String, suffix: String) -> (UInt64, UInt64)? {
        guard name.hasSuffix(suffix) else { return nil }
        let parts = name.dropLast(suffix.count).split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ $0.count == 16 }),
            let first = UInt64(parts[0], radix: 16), let second = UInt64(parts[1], radix: 16)
        else { return nil }
        return (first, second)
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }
}
