import Glibc
import Raft

/// The snapshot files in a node's `snap` directory, named `<term>-<index>.snap` (16 hex digits
/// each). A file holds: the magic bytes `FLOTSNAP`, a format version `u32` (1), the metadata
/// (index, term, configuration; see `RaftEncoding.swift`), the data as `u64` length then bytes, and
/// a CRC-32C `u32` of everything before it.
///
/// Durability contract: ``write(_:)`` returns once the file is durable under its final name; it
/// is written under a temporary name, fsynced, renamed and the directory fsynced, so a file under
/// its final name is always complete. Removing files is not synced: one that comes back after a
/// crash is not named by the log, and is removed again when the store opens.
final class SnapshotDirectory {
    private static let magic = Array("FLOTSNAP".utf8)
    private static let formatVersion: UInt32 = 1

    private let path: String
    private let syncer: Syncer

    /// Opens the directory, removing temporary files that a crash left behind.
    init(path: String, syncer: Syncer) throws(StorageError) {
        self.path = path
        self.syncer = syncer
        for name in try FileSystem.list(path) where name.hasSuffix(".tmp") { try FileSystem.remove(path + "/" + name) }
    }

    /// Whether the directory holds any snapshot file.
    func isEmpty() throws(StorageError) -> Bool { try snapshotNames().isEmpty }

    func write(_ snapshot: Snapshot) throws(StorageError) {
        let filePath = self.filePath(SnapshotMarker(index: snapshot.metadata.index, term: snapshot.metadata.term))
        var writer = BinaryWriter(capacity: snapshot.data.count + 64)
        writer.write(raw: Self.magic)
        writer.write(Self.formatVersion)
        writer.write(snapshot.metadata)
        writer.write(UInt64(snapshot.data.count))
        writer.write(raw: snapshot.data)
        writer.write(CRC32C.checksum(writer.bytes[...]))
        let temporary = try File(path: filePath + ".tmp", flags: O_WRONLY | O_CREAT | O_TRUNC)
        try temporary.write(writer.bytes, at: 0)
        try syncer.sync(temporary, dataOnly: false)
        try FileSystem.rename(temporary.path, to: filePath)
        try FileSystem.syncDirectory(path, with: syncer)
    }

    /// Reads and verifies the snapshot the log names.
    func read(_ marker: SnapshotMarker) throws(StorageError) -> Snapshot {
        let filePath = self.filePath(marker)
        let file: File
        do {
            file = try File(path: filePath, flags: O_RDONLY)
        } catch {
            if case .io(_, _, ENOENT) = error {
                throw .missing(path: filePath, reason: "the log restarts after this snapshot (index \(marker.index), term \(marker.term))")
            }
            throw error
        }
        let bytes = try file.readAll()
        let body = max(bytes.count - 4, 0)
        var trailer = BinaryReader(bytes[body...])
        guard let stored = try? trailer.readUInt32(), stored == CRC32C.checksum(bytes[..<body]) else {
            throw .corrupt(path: filePath, offset: body, reason: "the snapshot's checksum does not match its \(body) bytes")
        }
        var reader = BinaryReader(bytes[..<body])
        do throws(MalformedData) {
            guard try reader.readRaw(count: UInt64(Self.magic.count)) == Self.magic else { throw reader.failure("this is not a snapshot file") }
            let version = try reader.readUInt32()
            guard version == Self.formatVersion else {
                throw reader.failure("snapshot format version \(version) is not \(Self.formatVersion) (written by another version of flotilla?)")
            }
            let metadata = try reader.readSnapshotMetadata()
            guard metadata.index == marker.index && metadata.term == marker.term else {
                throw reader.failure("it holds the snapshot at index \(metadata.index), term \(metadata.term), not the one its name says")
            }
            let data = try reader.readRaw(count: try reader.readUInt64())
            try reader.expectEnd("the snapshot data")
            return Snapshot(metadata: metadata, data: data)
        } catch {
            throw .corrupt(path: filePath, offset: error.offset, reason: error.reason)
        }
    }

    /// Removes every snapshot file but the one `keep` names.
    func removeAll(except keep: SnapshotMarker?) throws(StorageError) {
        for (name, marker) in try snapshotNames() where marker != keep { try FileSystem.remove(path + "/" + name) }
    }

    private func filePath(_ marker: SnapshotMarker) -> String {
        path + "/" + FileNames.make(marker.term, marker.index, suffix: ".snap")
    }

    private func snapshotNames() throws(StorageError) -> [(name: String, marker: SnapshotMarker)] {
        try FileSystem.list(path).compactMap { name in
            FileNames.parse(name, suffix: ".snap").map { (name, SnapshotMarker(index: $0.1, term: $0.0)) }
        }
    }
}
