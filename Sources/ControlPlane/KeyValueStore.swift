public import Raft
import RaftStorage

/// A replicated key-value map: the state machine `flotilla node` runs until the task manifest
/// replaces it, and the one the cluster tests check for lost or duplicated writes.
///
/// Commands: ``put(_:_:)``, ``delete(_:)``. Queries: ``get(_:)``, ``count``.
public struct KeyValueStore: ReplicatedStateMachine, Sendable {
    private var values: [[UInt8]: [UInt8]] = [:]
    public private(set) var appliedCommands: UInt64 = 0

    public init() {}

    public static func put(_ key: [UInt8], _ value: [UInt8]) -> [UInt8] {
        var w = BinaryWriter()
        w.write(UInt8(1))
        w.write(lengthPrefixed: key)
        w.write(lengthPrefixed: value)
        return w.bytes
    }

    public static func delete(_ key: [UInt8]) -> [UInt8] {
        var w = BinaryWriter()
        w.write(UInt8(2))
        w.write(lengthPrefixed: key)
        return w.bytes
    }

    public static func get(_ key: [UInt8]) -> [UInt8] {
        var w = BinaryWriter()
        w.write(UInt8(1))
        w.write(lengthPrefixed: key)
        return w.bytes
    }

    public static let count: [UInt8] = [2]

    /// Decodes the answer to ``get(_:)``: the value, or nil if the key is absent.
    public static func decodeGet(_ result: [UInt8]) -> [UInt8]? {
        var r = BinaryReader(result[...])
        guard (try? r.readUInt8()) == 1 else { return nil }
        return try? r.readLengthPrefixed()
    }

    public static func decodeCount(_ result: [UInt8]) -> UInt64? {
        var r = BinaryReader(result[...])
        return try? r.readUInt64()
    }

    /// Why `command` is not a well-formed key-value command within the request limits (nil: it
    /// is one). Checked before a raw proposal is appended: garbage never reaches the log.
    public static func problem(_ command: [UInt8]) -> String? {
        var r = BinaryReader(command[...])
        do {
            let op = try r.readUInt8()
            guard op == 1 || op == 2 else { return "not a key-value command (first byte \(op); put is 1, delete 2)" }
            let key = try r.readLengthPrefixed()
            guard (1...RequestLimits.keyValueKeyBytes).contains(key.count) else {
                return "a key has 1 to \(RequestLimits.keyValueKeyBytes) bytes, not \(key.count)"
            }
            if op == 1 { _ = try r.readLengthPrefixed() }
            try r.expectEnd("the command")
        } catch {
            return "malformed key-value command at byte \(error.offset): \(error.reason)"
        }
        return nil
    }

    public mutating func apply(_ command: [UInt8], at index: Index) -> [UInt8] {
        var r = BinaryReader(command[...])
        do {
            switch try r.readUInt8() {
            case 1:
                let key = try r.readLengthPrefixed()
                values[key] = try r.readLengthPrefixed()
            case 2:
                values[try r.readLengthPrefixed()] = nil
            default:
                return Array("error: unknown command".utf8)
            }
        } catch {
            return Array("error: malformed command: \(error.reason)".utf8)
        }
        appliedCommands += 1
        return []
    }

    public func query(_ query: [UInt8]) -> [UInt8] {
        var r = BinaryReader(query[...])
        var w = BinaryWriter()
        switch try? r.readUInt8() {
        case 1?:
            guard let key = try? r.readLengthPrefixed(), let value = values[key] else {
                w.write(UInt8(0))
                return w.bytes
            }
            w.write(UInt8(1))
            w.write(lengthPrefixed: value)
        case 2?:
            w.write(UInt64(values.count))
        default:
            break
        }
        return w.bytes
    }

    public func snapshot() -> [UInt8] {
        var w = BinaryWriter()
        w.write(appliedCommands)
        w.write(UInt64(values.count))
        // Sorted, so that every node's snapshot of the same state is the same bytes.
        for key in values.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            w.write(lengthPrefixed: key)
            w.write(lengthPrefixed: values[key]!)
        }
        return w.bytes
    }

    public mutating func restore(_ snapshot: [UInt8]) throws(StateMachineError) {
        var r = BinaryReader(snapshot[...])
        do {
            let applied = try r.readUInt64()
            let count = try r.readUInt64()
            var restored: [[UInt8]: [UInt8]] = [:]
            for _ in 0..<count { restored[try r.readLengthPrefixed()] = try r.readLengthPrefixed() }
            try r.expectEnd("the key-value snapshot")
            values = restored
            appliedCommands = applied
        } catch {
            throw StateMachineError("corrupt key-value snapshot at byte \(error.offset): \(error.reason)")
        }
    }
}
