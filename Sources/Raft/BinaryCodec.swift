/// Appends fixed-width little-endian integers and length-prefixed byte strings to a buffer: the
/// encoding of every record and snapshot file. Hand-written so that the on-disk format is exactly
/// what this file says, independent of any serialisation library's version.
package struct BinaryWriter {
    package private(set) var bytes: [UInt8] = []

    package init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

    package var count: Int { bytes.count }

    package mutating func write(_ value: UInt8) { bytes.append(value) }

    package mutating func write(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    package mutating func write(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A byte string: its length as a `u32`, then the bytes.
    package mutating func write(lengthPrefixed data: [UInt8]) {
        write(UInt32(data.count))
        write(raw: data)
    }

    package mutating func write(raw data: [UInt8]) { bytes.append(contentsOf: data) }

    /// Overwrites four bytes written earlier (a length or checksum known only afterwards).
    package mutating func overwrite(_ value: UInt32, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { bytes.replaceSubrange(offset..<offset + 4, with: $0) }
    }
}

/// Bytes that do not decode: too short, or holding a value the format does not allow.
package struct MalformedData: Error, Sendable, Hashable {
    /// Where decoding stopped, from the start of the bytes given to the reader.
    package var offset: Int
    package var reason: String
}

/// Reads what ``BinaryWriter`` wrote, checking that every read stays inside the bytes.
package struct BinaryReader {
    private let bytes: ArraySlice<UInt8>
    private(set) var position: Int

    package init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    package var isAtEnd: Bool { position == bytes.endIndex }

    /// How far into the bytes the reader is.
    package var offset: Int { position - bytes.startIndex }

    package mutating func readUInt8() throws(MalformedData) -> UInt8 {
        try need(1, "a byte")
        defer { position += 1 }
        return bytes[position]
    }

    package mutating func readUInt32() throws(MalformedData) -> UInt32 {
        try need(4, "a 4-byte integer")
        var value: UInt32 = 0
        for k in 0..<4 { value |= UInt32(bytes[position + k]) << (8 * k) }
        position += 4
        return value
    }

    package mutating func readUInt64() throws(MalformedData) -> UInt64 {
        try need(8, "an 8-byte integer")
        var value: UInt64 = 0
        for k in 0..<8 { value |= UInt64(bytes[position + k]) << (8 * k) }
        position += 8
        return value
    }

    package mutating func readLengthPrefixed() throws(MalformedData) -> [UInt8] {
        try readRaw(count: UInt64(try readUInt32()))
    }

    package mutating func readRaw(count: UInt64) throws(MalformedData) -> [UInt8] {
        guard count <= UInt64(bytes.endIndex - position) else { throw failure("ends where \(count) bytes of data were expected") }
        let end = position + Int(count)
        defer { position = end }
        return Array(bytes[position..<end])
    }

    package func failure(_ reason: String) -> MalformedData { MalformedData(offset: offset, reason: reason) }

    /// Throws unless every byte was read.
    package func expectEnd(_ what: String) throws(MalformedData) {
        if !isAtEnd { throw failure("\(bytes.endIndex - position) unexpected bytes after \(what)") }
    }

    private func need(_ count: Int, _ what: String) throws(MalformedData) {
        if bytes.endIndex - position < count { throw failure("ends where \(what) was expected") }
    }
}
