import Glibc

/// An open file or directory descriptor, closed when the value goes away. Every failing call
/// throws ``StorageError/io(operation:path:errno:)`` naming the path.
///
/// Nothing here is durable by itself: a write reaches the disk only after ``sync(dataOnly:)``
/// returns, and a file created, renamed or removed in a directory only after the directory is synced.
final class File {
    let path: String
    private let descriptor: Int32

    /// Opens `path` with `open(2)` flags; `O_CLOEXEC` is always added.
    init(path: String, flags: Int32, mode: mode_t = 0o644) throws(StorageError) {
        self.path = path
        descriptor = Glibc.open(path, flags | O_CLOEXEC, mode)
        if descriptor < 0 { throw .io(operation: "open", path: path, errno: errno) }
    }

    /// Opens a directory so that it can be synced after files in it are created, renamed or removed.
    static func directory(_ path: String) throws(StorageError) -> File {
        try File(path: path, flags: O_RDONLY | O_DIRECTORY)
    }

    deinit { Glibc.close(descriptor) }

    /// Writes all of `bytes` at `offset`, retrying short writes and interrupted calls.
    func write(_ bytes: [UInt8], at offset: Int) throws(StorageError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(descriptor, $0.baseAddress! + done, $0.count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "write", path: path, errno: errno)
            }
            done += n
        }
    }

    /// The whole file, read sequentially from the start.
    func readAll() throws(StorageError) -> [UInt8] {
        let count = try size()
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = bytes.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress! + done, count - done, off_t(done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "read", path: path, errno: errno)
            }
            if n == 0 { break }  // shrank meanwhile
            done += n
        }
        return Array(bytes[..<done])
    }

    func size() throws(StorageError) -> Int {
        var info = stat()
        if fstat(descriptor, &info) != 0 { throw .io(operation: "stat", path: path, errno: errno) }
        return Int(info.st_size)
    }

    func truncate(to size: Int) throws(StorageError) {
        if ftruncate(descriptor, off_t(size)) != 0 { throw .io(operation: "truncate", path: path, errno: errno) }
    }

    /// `fdatasync` (file contents and size) or `fsync` (everything, as directories need).
    func sync(dataOnly: Bool) throws(StorageError) {
        while (dataOnly ? fdatasync(descriptor) : fsync(descriptor)) != 0 {
            if errno != EINTR { throw .io(operation: dataOnly ? "fdatasync" : "fsync", path: path, errno: errno) }
        }
    }

    /// Takes an exclusive `flock` for as long as this descriptor is open; throws
    /// ``StorageError/locked(path:)`` if someone else holds it.
    func lockExclusively() throws(StorageError) {
        if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return }
        if errno == EWOULDBLOCK { throw .locked(path: path) }
        throw .io(operation: "lock", path: path, errno: errno)
    }
}
