import Glibc

/// Operations on paths rather than open files. None is durable until the directory involved is
/// synced (``File/directory(_:)`` then ``File/sync(dataOnly:)``).
enum FileSystem {
    /// Creates the directory unless it exists; returns whether it created it.
    @discardableResult
    static func makeDirectory(_ path: String) throws(StorageError) -> Bool {
        if mkdir(path, 0o755) == 0 { return true }
        if errno == EEXIST { return false }
        throw .io(operation: "create directory", path: path, errno: errno)
    }

    /// The names in a directory, without "." and "..", sorted.
    static func list(_ path: String) throws(StorageError) -> [String] {
        guard let dir = opendir(path) else { throw .io(operation: "list", path: path, errno: errno) }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Atomically replaces `destination` with `source`.
    static func rename(_ source: String, to destination: String) throws(StorageError) {
        if Glibc.rename(source, destination) != 0 { throw .io(operation: "rename to \(destination)", path: source, errno: errno) }
    }

    static func remove(_ path: String) throws(StorageError) {
        if unlink(path) != 0 { throw .io(operation: "remove", path: path, errno: errno) }
    }

    /// Syncs the directory itself, making the creation, renaming or removal of its files durable.
    static func syncDirectory(_ path: String, with syncer: Syncer) throws(StorageError) {
        try syncer.sync(File.directory(path), dataOnly: false)
    }
}
