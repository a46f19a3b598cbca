/// Why the bench store could not do what was asked. Every description names the file or run
/// concerned and says what to do about it.
public enum BenchStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The database file (or its folder) could not be created or opened.
    case cannotOpen(path: String, reason: String)
    /// The file exists but is not a usable bench store: not SQLite, damaged, or another
    /// application's database.
    case corrupt(path: String, reason: String)
    /// The store was written by a newer bench: it records schema migrations this build does not
    /// know. Opening it could misread or damage its data, so it is refused.
    case schemaTooNew(path: String, unknownMigrations: [String])
    /// No run has this id or tag (the argument as the user gave it: "42", "baseline-2026-11",
    /// "latest:scaling").
    case runNotFound(String)
    /// The tag is already attached to another run; tags are unique.
    case duplicateTag(tag: String, existingRunID: Int64)
    /// The tag cannot be used (empty, numeric, or starting with "latest").
    case invalidTag(tag: String, reason: String)
    /// A stored value could not be decoded (for example a run status this build does not know).
    case invalidStoredValue(column: String, value: String)
    /// An SQLite operation failed (disk full, read-only file, lock held too long, ...).
    case database(operation: String, reason: String)
    /// A CSV export could not be written.
    case cannotWrite(path: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot open the bench store at \(path): \(reason); check that its folder exists or "
                + "can be created and is writable, or pass --db with another path"
        case .corrupt(let path, let reason):
            return "\(path) is not a usable bench store (\(reason)); move the file aside or pass --db "
                + "with another path (bench creates a fresh store there)"
        case .schemaTooNew(let path, let unknown):
            return "\(path) was written by a newer bench (schema migrations unknown to this build: "
                + "\(unknown.joined(separator: ", "))); upgrade bench (pull and rebuild) to read it, or pass "
                + "--db with another path"
        case .runNotFound(let reference):
            return "no run matches '\(reference)'; `bench list` shows run ids and tags "
                + "('latest' and 'latest:<phase>' also work)"
        case .duplicateTag(let tag, let existing):
            return "tag '\(tag)' is already attached to run \(existing); choose another tag, or remove it "
                + "from run \(existing) first"
        case .invalidTag(let tag, let reason):
            return "cannot use '\(tag)' as a tag: \(reason); use letters, digits and '-', '_', '.', "
                + "for example 'baseline-2026-11'"
        case .invalidStoredValue(let column, let value):
            return "the bench store holds \(column) '\(value)', which this build does not understand; "
                + "it was probably written by a newer bench: upgrade bench"
        case .database(let operation, let reason):
            return "bench store: \(operation) failed: \(reason); if the store is locked by another bench "
                + "process, wait for it to finish and retry"
        case .cannotWrite(let path, let reason):
            return "cannot write \(path): \(reason); check that its folder is writable and the disk not full"
        }
    }
}
