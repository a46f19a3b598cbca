/// CRC-32C (Castagnoli; the checksum of iSCSI, ext4 and etcd's WAL), computed a byte at a time
/// from a 256-entry table. The checksum of the ASCII bytes "123456789" is `0xE306_9283`.
struct CRC32C {
    /// The reflected polynomial 0x1EDC6F41.
    private static let table: [UInt32] = (0..<256).map { (byte: UInt32) in
        var c = byte
        for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    private var state: UInt32 = 0xFFFF_FFFF

    init() {}

    /// Adds `bytes` to the checksum.
    mutating func update(_ bytes: ArraySlice<UInt8>) {
        Self.table.withUnsafeBufferPointer { table in
            bytes.withUnsafeBufferPointer { input in
                var c = state
                for b in input { c = table[Int(UInt8(truncatingIfNeeded: c) ^ b)] ^ (c >> 8) }
                state = c
            }
        }
    }

    var value: UInt32 { ~state }

    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt32 {
        var crc = CRC32C()
        crc.update(bytes)
        return crc.value
    }
}
