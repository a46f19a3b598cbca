import Foundation

// RFC 4180 CSV. Records end with CRLF, as the RFC specifies (pandas, R, Python's csv module,
// spreadsheets and `csvkit` all read it); the last record ends with CRLF too. Fields are quoted
// only when they must be: when they contain a comma, a double quote, CR or LF; quotes inside are
// doubled. Text is UTF-8 without a byte-order mark.

/// One CSV field, quoted if it contains a comma, a double quote, CR or LF (quotes doubled), as
/// RFC 4180 requires; otherwise unchanged.
public func csvField(_ field: String) -> String {
    let needsQuotes = field.utf8.contains { byte in
        byte == UInt8(ascii: ",") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\r")
            || byte == UInt8(ascii: "\n")
    }
    guard needsQuotes else { return field }
    return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}

/// One CSV record: the fields escaped with `csvField`, joined by commas, ending with CRLF.
public func csvRecord(_ fields: [String]) -> String {
    fields.map(csvField).joined(separator: ",") + "\r\n"
}

/// A number as CSV text that parses back to the same `Double`: Swift's shortest round-trip form
/// ("0.1", "1e-05", "2048.0"); "NaN", "Inf" and "-Inf" for the non-finite values (pandas and R's
/// `read.csv` read all three).
public func csvNumber(_ value: Double) -> String {
    if value.isNaN { return "NaN" }
    if value.isInfinite { return value < 0 ? "-Inf" : "Inf" }
    return "\(value)"
}

/// The fixed columns of `tidyCSV`, in order.
public let tidyCSVFixedColumns = [
    "run_id", "phase", "metric", "unit", "value", "repetition", "warmup", "sequence", "at",
]

/// Tidy CSV of a run's samples: a header, then one row per sample in the order given.
///
/// Columns: `run_id` (the sample's run), `phase` (the run's), `metric`, `unit`, `value`
/// (`csvNumber`), `repetition`, `warmup` ("true"/"false"), `sequence`, `at` (seconds since the run
/// started; empty when unknown), then one column per label key: the union of all samples' keys,
/// sorted; empty where a sample lacks the key. A label key equal to a fixed column name is written
/// as `label_<key>`. Records end with CRLF (RFC 4180).
public func tidyCSV(run: RunInfo, samples: [Sample]) -> String {
    let labelKeys = Set(samples.flatMap(\.labels.keys)).sorted()
    let fixed = Set(tidyCSVFixedColumns)
    var out = csvRecord(tidyCSVFixedColumns + labelKeys.map { fixed.contains($0) ? "label_\($0)" : $0 })
    out.reserveCapacity(out.utf8.count * (samples.count + 1))
    for sample in samples {
        var fields = [
            String(sample.runID), run.phase, sample.metric, sample.unit, csvNumber(sample.value),
            String(sample.repetition), sample.warmup ? "true" : "false", String(sample.sequence),
            sample.at.map(csvNumber) ?? "",
        ]
        for key in labelKeys { fields.append(sample.labels[key] ?? "") }
        out += csvRecord(fields)
    }
    return out
}

/// Writes `tidyCSV(run:samples:)` to `path` (UTF-8, atomically), creating missing parent folders.
/// - Throws: `.cannotWrite`.
public func writeTidyCSV(run: RunInfo, samples: [Sample], to path: String) throws(BenchStoreError) {
    let url = URL(fileURLWithPath: path)
    do {
        try FileManager.default.createDirectory(
            at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(tidyCSV(run: run, samples: samples).utf8).write(to: url, options: .atomic)
    } catch {
        throw .cannotWrite(path: path, reason: error.localizedDescription)
    }
}
