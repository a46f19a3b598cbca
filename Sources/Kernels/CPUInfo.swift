import Glibc

/// This machine's processor as Linux describes it (/proc/cpuinfo, sysconf, cpufreq), and what that
/// implies for OpenBLAS: which kernel suits it, whether the loaded one is a fallback, and the
/// theoretical peak a matmul could approach. x86-64 only: elsewhere `flags` is empty and the
/// recommendations and peaks are nil.
public enum CPUInfo {
    /// "model name" of the first processor, e.g. "Intel(R) Xeon(R) Processor"; nil if unknown.
    public static var modelName: String? { cpuinfo.modelName }

    /// Online logical processors (`sysconf(_SC_NPROCESSORS_ONLN)`), at least 1.
    public static var logicalCores: Int {
        max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    }

    /// The first processor's feature flags, e.g. "avx2", "fma", "avx512f".
    public static var flags: Set<String> { cpuinfo.flags }

    /// The clock used for peak estimates, in GHz: cpufreq's `cpuinfo_max_freq` when present,
    /// otherwise the first "cpu MHz" of /proc/cpuinfo. Either can differ from the clock a gemm
    /// really runs at: virtual machines often report the nominal base clock while the core turbos
    /// above it (one core of this project's 2.3 GHz Xeon VM measured ~155 GFLOP/s float32 against
    /// a computed 147), and heavy AVX-512 use can lower it. Nil if neither is readable.
    public static var gigahertz: Double? {
        if let text = readTextFile("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"),
            let kilohertz = Double(text.trimmingWhitespace), kilohertz > 0
        {
            return kilohertz / 1e6
        }
        return cpuinfo.megahertz.map { $0 / 1000 }
    }

    /// The `OPENBLAS_CORETYPE` that suits a CPU with these flags: "SkylakeX" with AVX-512
    /// (avx512f, avx512dq, avx512bw and avx512vl), "Haswell" with AVX2 and FMA, else nil.
    public static func recommendedCoreType(flags: Set<String>) -> String? {
        if ["avx512f", "avx512dq", "avx512bw", "avx512vl"].allSatisfy(flags.contains) { return "SkylakeX" }
        if flags.contains("avx2"), flags.contains("fma") { return "Haswell" }
        return nil
    }

    /// OpenBLAS kernels that predate AVX2 (plus the generic fallbacks). Lower-cased.
    static let preAVX2Cores: Set<String> = [
        "generic", "unknown", "katmai", "coppermine", "northwood", "prescott", "banias", "core2",
        "penryn", "dunnington", "nehalem", "atom", "sandybridge", "athlon", "opteron", "opteron_sse3",
        "barcelona", "bobcat", "bulldozer", "piledriver", "steamroller", "excavator", "nano",
    ]

    /// True when OpenBLAS reports a generic or pre-AVX2 kernel (Prescott, Core2, Nehalem, Katmai,
    /// Sandybridge, generic, ...) although the CPU supports AVX2+FMA or AVX-512: the library did
    /// not recognise the processor and is running far below what it could.
    public static func openBLASFallbackLikely(coreName: String, flags: Set<String>) -> Bool {
        guard recommendedCoreType(flags: flags) != nil else { return false }
        return preAVX2Cores.contains(coreName.lowercased())
    }

    /// Floating-point operations per cycle per core: for float32, 64 with AVX-512 (assuming two
    /// 512-bit FMA units, as on Xeon Gold/Platinum; parts with one unit reach 32), 32 with AVX2+FMA
    /// (two 256-bit FMA units), 16 with AVX (one 256-bit add and one multiply), 8 with SSE; half of
    /// that for float64. Nil without any of these flags.
    public static func flopsPerCycle(flags: Set<String>, precision: Precision) -> Int? {
        let single: Int
        if flags.contains("avx512f") {
            single = 64
        } else if flags.contains("avx2"), flags.contains("fma") {
            single = 32
        } else if flags.contains("avx") {
            single = 16
        } else if flags.contains("sse") || flags.contains("sse2") {
            single = 8
        } else {
            return nil
        }
        return precision == .float32 ? single : single / 2
    }

    /// cores × GHz × flops/cycle for this machine (`flags`, `gigahertz`), or nil if either is
    /// unknown. An upper bound: the assumptions of `flopsPerCycle` (two FMA units with AVX-512)
    /// and a clock that does not drop under heavy vector load rarely both hold.
    public static func theoreticalPeakGFLOPS(cores: Int, precision: Precision) -> Double? {
        guard let gigahertz else { return nil }
        return theoreticalPeakGFLOPS(cores: cores, precision: precision, flags: flags, gigahertz: gigahertz)
    }

    /// cores × `gigahertz` × `flopsPerCycle(flags:precision:)`, or nil if the flags are unknown.
    public static func theoreticalPeakGFLOPS(
        cores: Int, precision: Precision, flags: Set<String>, gigahertz: Double
    ) -> Double? {
        guard let perCycle = flopsPerCycle(flags: flags, precision: precision) else { return nil }
        return Double(cores) * gigahertz * Double(perCycle)
    }

    /// The fields of /proc/cpuinfo this type reports, from its first processor.
    struct Summary: Sendable, Hashable {
        var modelName: String?
        var flags: Set<String> = []
        var megahertz: Double?
    }

    /// /proc/cpuinfo, read once (model and flags do not change while running).
    static let cpuinfo: Summary = readTextFile("/proc/cpuinfo").map(parse) ?? Summary()

    /// Parses the text of /proc/cpuinfo; only the first value of each field is used.
    static func parse(_ text: String) -> Summary {
        var summary = Summary()
        var sawFlags = false
        for line in text.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingWhitespace
            let value = line[line.index(after: colon)...].trimmingWhitespace
            switch key {
            case "model name" where summary.modelName == nil:
                summary.modelName = value
            case "flags" where !sawFlags:
                sawFlags = true
                summary.flags = Set(value.split(separator: " ").map(String.init))
            case "cpu MHz" where summary.megahertz == nil:
                summary.megahertz = Double(value)
            default:
                break
            }
        }
        return summary
    }
}
