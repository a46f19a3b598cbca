/// Why a chart could not be written or rendered. Every description says what to do.
public enum ChartError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The chart cannot be drawn as declared (bad file stem, no data, non-positive values on a
    /// logarithmic axis, ...).
    case invalidChart(stem: String, reason: String)
    /// A file or folder could not be written.
    case cannotWrite(path: String, reason: String)
    /// No gnuplot executable at this name or path.
    case gnuplotNotFound(String)
    /// gnuplot ran but failed; `output` is what it printed on stderr (last 2 000 characters).
    case gnuplotFailed(script: String, status: Int32, output: String)
    /// gnuplot did not finish in time and was stopped.
    case timedOut(script: String, seconds: Int)
    /// gnuplot succeeded but an output file is missing or empty.
    case missingOutput(path: String)

    public var description: String {
        switch self {
        case .invalidChart(let stem, let reason):
            return "chart '\(stem)' cannot be drawn: \(reason)"
        case .cannotWrite(let path, let reason):
            return "cannot write \(path): \(reason); check that the folder is writable and the disk not full"
        case .gnuplotNotFound(let gnuplot):
            return "gnuplot not found ('\(gnuplot)' is not an executable \(gnuplot.contains("/") ? "file" : "on PATH")); "
                + "install it (Debian/Ubuntu: sudo apt-get install gnuplot-nox, which scripts/install-deps.sh "
                + "does; macOS: brew install gnuplot) or pass its path. The .gp scripts and .dat files are "
                + "written anyway: run `gnuplot <chart>.gp` in their folder later"
        case .gnuplotFailed(let script, let status, let output):
            return "gnuplot failed on \(script) (exit status \(status)): \(output.isEmpty ? "no message" : output); "
                + "the script and its data are kept: run `gnuplot \(script)` in its folder to reproduce"
        case .timedOut(let script, let seconds):
            return "gnuplot did not finish \(script) within \(seconds) s and was stopped; the machine may be "
                + "overloaded, or the data too large (run `gnuplot \(script)` in its folder to see)"
        case .missingOutput(let path):
            return "gnuplot reported success but did not write \(path); check gnuplot's terminals "
                + "(`gnuplot -e 'set terminal'` should list png or pngcairo, and svg)"
        }
    }
}
