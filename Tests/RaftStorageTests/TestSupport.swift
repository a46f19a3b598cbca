import Foundation
import Raft
@testable import RaftStorage
import Testing

/// Runs `body` with a fresh directory under /tmp, removed afterwards.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
    let path = "/tmp/flotilla-raftstorage-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try body(path)
}

/// `count` entries from `first` on, of `term`, each a command of `size` bytes.
func entries(from first: Index, count: Int, term: Term, size: Int = 8) -> [Entry] {
    (0..<count).map { k in
        let index = first + Index(k)
        return Entry(term: term, index: index, payload: .command((0..<size).map { UInt8(truncatingIfNeeded: Int(index) &* 31 &+ $0) }))
    }
}

func ready(entries: [Entry] = [], hardState: HardState? = nil, snapshot: Snapshot? = nil) -> Ready {
    var rd = Ready()
    rd.entries = entries
    rd.hardState = hardState
    rd.snapshot = snapshot
    return rd
}

func snapshot(index: Index, term: Term, voters: [NodeID] = [1, 2, 3], size: Int = 40) -> Snapshot {
    Snapshot(
        metadata: SnapshotMetadata(index: index, term: term, configuration: Configuration(voters: voters)),
        data: (0..<size).map { UInt8(truncatingIfNeeded: Int(index) &+ $0) })
}

// MARK: - The files of a data directory

func segmentPaths(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory + "/wal").filter { $0.hasSuffix(".log") }.sorted()
        .map { directory + "/wal/" + $0 }
}

func snapshotPaths(_ directory: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory + "/snap").sorted().map { directory + "/snap/" + $0 }
}

func bytes(of path: String) throws -> [UInt8] {
    [UInt8](try #require(FileManager.default.contents(atPath: path)))
}

func overwrite(_ path: String, with bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func flipByte(at offset: Int, of path: String) throws {
    var content = try bytes(of: path)
    content[offset] ^= 0xFF
    try overwrite(path, with: content)
}

// MARK: - Either storage behind one interface

/// The two ``LogStorage`` implementations, for tests that both must pass.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory, file
    var testDescription: String { rawValue }
}

/// A storage under test that can be restarted: a `FileLogStorage` is closed and reopened from its
/// directory, a `MemoryStorage` keeps its value (what the simulator does across a crash).
final class RestartableStorage {
    let backend: Backend
    let directory: String
    private let segmentSize: Int
    private(set) var storage: any LogStorage

    init(_ backend: Backend, in directory: String, segmentSize: Int = 64 << 20) throws {
        self.backend = backend
        self.directory = directory + "/node"
        self.segmentSize = segmentSize
        storage = MemoryStorage()
        if backend == .file { storage = try FileLogStorage(directory: self.directory, segmentSize: segmentSize) }
    }

    func persist(_ rd: Ready) throws { try storage.persist(rd) }
    func compact(_ snapshot: Snapshot) throws { try storage.compact(snapshot) }
    func load() throws -> PersistentState { try storage.load() }

    func restart() throws {
        guard backend == .file else { return }
        storage = MemoryStorage()  // closes the files and releases the lock first
        storage = try FileLogStorage(directory: directory, segmentSize: segmentSize)
    }

    /// Checks that `load()` returns `expected`, both now and after a restart.
    func expectLoads(_ expected: PersistentState, sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(try load() == expected, sourceLocation: sourceLocation)
        try restart()
        #expect(try load() == expected, "after a restart", sourceLocation: sourceLocation)
    }
}
