import BenchCharts
import Foundation
import Testing

/// A fresh folder under the temporary directory, removed by `cleanUp()` unless
/// BENCH_CHARTS_PREVIEW_DIR is set, in which case charts go there and stay (to look at them).
struct ChartFolder {
    let path: String
    let keep: Bool

    init() throws {
        if let preview = ProcessInfo.processInfo.environment["BENCH_CHARTS_PREVIEW_DIR"], !preview.isEmpty {
            path = preview
            keep = true
        } else {
            path = FileManager.default.temporaryDirectory
                .appendingPathComponent("bench-charts-tests-\(UUID().uuidString)").path
            keep = false
        }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func cleanUp() {
        if !keep { try? FileManager.default.removeItem(atPath: path) }
    }
}

/// Deterministic pseudo-random numbers (SplitMix64) for sample data.
struct Numbers {
    var state: UInt64

    mutating func unit() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }

    /// Log-normal with the given median and spread (σ of the log).
    mutating func logNormal(median: Double, sigma: Double) -> Double {
        let u1 = max(unit(), 1e-12)
        let u2 = unit()
        let normal = (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
        return median * exp(sigma * normal)
    }
}

enum Examples {
    static var gflops: Chart {
        .gflopsVsSize(
            seriesByThreads: [
                1: [(256, 38, 36, 40), (512, 58, 57, 60), (1024, 69, 68, 70.5), (2048, 73, 72, 74), (4096, 74.5, 74, 75)],
                2: [(256, 55, 50, 61), (512, 101, 97, 104), (1024, 128, 125, 131), (2048, 141, 139, 143), (4096, 144, 143, 146)],
            ],
            peak: 147.2, title: "float32 sgemm throughput vs size", fileStem: "baseline-run1-gflops")
    }

    static var overhead: Chart {
        .overheadVsSize(
            points: [(256, 38, 30, 47), (512, 12.5, 10, 15), (1024, 4.1, 3.2, 5.3), (2048, 1.4, 0.9, 2.0), (4096, 0.6, 0.3, 0.9)],
            target: 10, fileStem: "overhead-run2-overhead")
    }

    static var latency: Chart {
        var numbers = Numbers(state: 42)
        let three = (0..<5000).map { _ in numbers.logNormal(median: 2.1, sigma: 0.35) }
        let five = (0..<3000).map { _ in numbers.logNormal(median: 3.4, sigma: 0.45) }
        return .latencyCDF(
            samplesByLabel: ["3 nodes": three, "5 nodes": five], targetMs: 10,
            title: "commit_latency_ms distribution", fileStem: "baseline-run1-commit-latency-cdf")
    }

    static var scaling: Chart {
        let fit = stride(from: 1.0, through: 8.0, by: 0.25).map { n in (agents: n, efficiency: 100 / (1 + 0.45 * (n - 1))) }
        return .scaling(
            points: [(1, 1, 100, 97, 103), (2, 1.86, 93, 89, 96), (4, 2.3, 57.5, 54, 61), (8, 2.4, 30, 27, 33)],
            fitted: fit, target: 90, oversubscribedFrom: 3, fileStem: "scaling-run3-scaling")
    }

    static var failover: Chart {
        var numbers = Numbers(state: 7)
        let series = stride(from: 0.0, through: 40.0, by: 0.5).map { t -> (t: Double, tasksPerSecond: Double) in
            let base = 48 + 6 * numbers.unit()
            if t >= 15 && t < 17.5 { return (t, 0) }
            if t >= 17.5 && t < 19 { return (t, base * 1.4) }  // backlog drains
            return (t, base)
        }
        return .failoverTimeline(
            throughput: series, kill: 15, newLeader: 15.8, recovered: 17.5, target: 5,
            fileStem: "failover-run4-timeline")
    }

    static let names = ["gflops", "overhead", "latency", "scaling", "failover"]

    static func named(_ name: String) -> Chart {
        switch name {
        case "gflops": gflops
        case "overhead": overhead
        case "latency": latency
        case "scaling": scaling
        default: failover
        }
    }
}

@Suite("gnuplot script")
struct ScriptTests {
    @Test("the script renders PNG and SVG from its data by relative path")
    func outputs() {
        let script = gnuplotScript(for: Examples.gflops)
        #expect(script.contains("data = \"baseline-run1-gflops.dat\""))
        #expect(script.contains("if (strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0) {"))
        #expect(script.contains("    set terminal pngcairo size @png_size font font_spec noenhanced"))
        #expect(script.contains("    set terminal png size @png_size font font_spec noenhanced"))
        #expect(script.contains("set output \"baseline-run1-gflops.png\""))
        #expect(script.contains("set terminal svg size @png_size dynamic font font_spec background rgb \"white\" noenhanced"))
        #expect(script.contains("set output \"baseline-run1-gflops.svg\""))
        #expect(script.contains("\nreplot\n"))
        #expect(script.contains("png_size = \"1000,620\""))
        // No absolute paths: the folder can be moved.
        #expect(!script.contains("/tmp") && !script.contains("plots/"))
        #expect(script.contains("plot data index 0 using 1:2:3:4 with yerrorlines lt 1 title \"1 thread\", \\\n     data index 1 using 1:2:3:4 with yerrorlines lt 2 title \"2 threads\""))
    }

    @Test("labels carry units; log scales, tics, ranges and the key are set")
    func axes() {
        let script = gnuplotScript(for: Examples.gflops)
        #expect(script.contains("set xlabel \"matrix size n (n × n matrices, log scale)\""))
        #expect(script.contains("set ylabel \"throughput (GFLOP/s)\""))
        #expect(script.contains("set logscale x\n"))
        #expect(!script.contains("set logscale y"))
        #expect(script.contains("set xtics (256, 512, 1024, 2048, 4096)"))
        #expect(script.contains("set xrange [182.85714285714286 : 5734.4]"))
        #expect(script.contains("set yrange [0 : 154.56 < *]"))
        #expect(script.contains("set key bottom right box opaque"))

        let latency = gnuplotScript(for: Examples.latency)
        #expect(latency.contains("set logscale x\n"))
        #expect(latency.contains("set xlabel \"latency (ms, log scale)\""))
        #expect(latency.contains("set ylabel \"samples at or below (%)\""))
        #expect(latency.contains("set yrange [0 : 100]"))
        #expect(latency.contains("with steps lt 1 title \"3 nodes (n = 5000)\""))

        let scaling = gnuplotScript(for: Examples.scaling)
        #expect(scaling.contains("set y2label \"speedup (× one agent)\""))
        #expect(scaling.contains("set y2tics"))
        #expect(scaling.contains("set ytics nomirror"))
        #expect(scaling.contains("axes x1y2 with linespoints lt 2 title \"speedup (measured)\""))
        #expect(scaling.contains("with lines lt 1 dt 2 title \"efficiency (fitted)\""))
        #expect(scaling.contains("set key below"))
    }

    @Test("targets are dashed red lines with labels; markers are labelled vertical lines")
    func targetsAndMarkers() {
        let overhead = gnuplotScript(for: Examples.overhead)
        #expect(overhead.contains("set arrow 1 from graph 0, first 10 to graph 1, first 10 nohead ls 100 front"))
        #expect(overhead.contains("set label 1 \"target 10 %\" at graph 0.99, first 10 right"))
        #expect(overhead.contains("set style line 100 lc rgb target_color lw 1.5 dt (10,6)"))
        #expect(overhead.contains("target_color = \"#CC0000\""))

        let scaling = gnuplotScript(for: Examples.scaling)
        #expect(scaling.contains("set arrow 1 from graph 0, first 90 to graph 1, first 90 nohead ls 100 front"))
        #expect(scaling.contains("set label 1 \"target 90 % efficiency\""))
        #expect(scaling.contains("set arrow 101 from first 2.5, graph 0 to first 2.5, graph 1 nohead ls 101 front"))
        #expect(scaling.contains("set label 101 \"agents > cores\" at first 2.5, graph 0.98 right rotate by 90"))

        let failover = gnuplotScript(for: Examples.failover)
        #expect(failover.contains("set arrow 1 from first 20, graph 0 to first 20, graph 1 nohead ls 100 front"))
        #expect(failover.contains("set label 1 \"target: recovered by kill + 5 s\" at first 20, graph"))
        #expect(failover.contains("set label 102 \"new leader (+0.8 s)\" at first 15.8, graph"))
        #expect(failover.contains("set label 103 \"recovered (+2.5 s)\" at first 17.5, graph"))
        // Labels are written from the bottom up, right of their lines (in the outage's gap).
        #expect(failover.contains("set label 101 \"leader killed\" at first 15, graph 0.02 left rotate by 90 offset char 0.8, 0"))
        #expect(failover.contains("set label 102 \"new leader (+0.8 s)\" at first 15.8, graph 0.02 left rotate by 90 offset char 0.8, 0"))
        #expect(failover.contains("set label 103 \"recovered (+2.5 s)\" at first 17.5, graph 0.02 left rotate by 90 offset char 0.8, 0"))
        #expect(failover.contains("unset key"))
    }

    @Test("labels of close events move to the other side of their line, then to a second band")
    func closeEvents() {
        let chart = Chart(
            fileStem: "events", title: "t", xLabel: "time (s)", yLabel: "tasks/s",
            series: [Series(title: "a", xy: [(x: 0, y: 1), (x: 40, y: 1)])],
            markers: [
                Marker(x: 10, label: "first"), Marker(x: 10.5, label: "second"), Marker(x: 11.3, label: "third"),
                Marker(x: 11.9, label: "fourth"), Marker(x: 30, label: "far"),
            ])
        // About 22 px per second; a label is about 13 px thick and keeps 3 px from other lines.
        let script = gnuplotScript(for: chart)
        let labels = script.split(separator: "\n").filter { $0.hasPrefix("set label") }
        #expect(labels == [
            // Left (preferred) where free.
            "set label 101 \"first\" at first 10, graph 0.98 right rotate by 90 offset char -0.8, 0 tc rgb marker_color front",
            // Left would cover the first line: right.
            "set label 102 \"second\" at first 10.5, graph 0.98 right rotate by 90 offset char 0.8, 0 tc rgb marker_color front",
            // Left would overlap the second's label, right would touch the fourth line: second band.
            "set label 103 \"third\" at first 11.3, graph 0.5 right rotate by 90 offset char -0.8, 0 tc rgb marker_color front",
            "set label 104 \"fourth\" at first 11.9, graph 0.98 right rotate by 90 offset char 0.8, 0 tc rgb marker_color front",
            "set label 105 \"far\" at first 30, graph 0.98 right rotate by 90 offset char -0.8, 0 tc rgb marker_color front",
        ])
    }

    @Test("autoscaled axes are widened to show targets and markers outside the data")
    func rangesIncludeTargets() {
        let chart = Chart(
            fileStem: "t", title: "t", xLabel: "x (s)", yLabel: "y (%)",
            series: [Series(title: "a", xy: [(x: 1, y: 1), (x: 2, y: 2)])],
            targets: [.horizontal(y: 10, label: "target 10 %"), .vertical(x: 30, label: "deadline")],
            markers: [Marker(x: 20, label: "event")])
        let script = gnuplotScript(for: chart)
        #expect(script.contains("set yrange [* < 9.5 : 10.5 < *]"))
        #expect(script.contains("set xrange [* < 18.5 : 31.5 < *]"))
        var fixed = chart
        fixed.yRange = AxisRange(min: 0, max: 50)
        fixed.xRange = AxisRange(min: 0)
        let fixedScript = gnuplotScript(for: fixed)
        #expect(fixedScript.contains("set yrange [0 : 50]"))
        #expect(fixedScript.contains("set xrange [0 : 31.5 < *]"))
    }

    @Test("titles and labels with quotes, backslashes, underscores and line breaks are escaped")
    func escaping() {
        let chart = Chart(
            fileStem: "escape", title: "commit_latency_ms: \"p99\" \\ n^2 {x} @macro & <b>\nsecond line",
            xLabel: "size_n", yLabel: "y_label (ms)",
            series: [Series(title: "series \"one\"_a", xy: [(x: 1, y: 1)])],
            targets: [.horizontal(y: 1, label: "target \"1\" \\")])
        let script = gnuplotScript(for: chart)
        #expect(script.contains(#"set title "commit_latency_ms: \"p99\" \\ n^2 {x} @macro & <b>\nsecond line" font ",14""#))
        #expect(script.contains(#"set xlabel "size_n""#))
        #expect(script.contains(#"title "series \"one\"_a""#))
        #expect(script.contains(#"set label 1 "target \"1\" \\" at"#))
        // Enhanced text is off on both terminals, so `_` and `^` are drawn literally.
        let terminals = script.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("set terminal") }
        #expect(terminals.count == 3)
        #expect(terminals.allSatisfy { $0.hasSuffix(" noenhanced") })
        // The header comment keeps the title on one line.
        #expect(script.hasPrefix("# escape.gp: commit_latency_ms: \"p99\" \\ n^2 {x} @macro & <b> second line\n"))
    }
}

@Suite("gnuplot data")
struct DataTests {
    @Test("one block per non-empty series, two blank lines apart, columns x y ylow yhigh")
    func blocks() {
        let chart = Chart(
            fileStem: "blocks", title: "t", xLabel: "size n", yLabel: "GFLOP/s",
            series: [
                Series(title: "first", points: [DataPoint(x: 256, y: 1.5, yLow: 1.25, yHigh: 2), DataPoint(x: 512, y: .nan)]),
                Series(title: "empty", points: []),
                Series(title: "third", points: [DataPoint(x: 0.125, y: .infinity), DataPoint(x: 1e-7, y: 3)], axis: .y2),
            ])
        let data = gnuplotData(for: chart)
        let blocks = data.components(separatedBy: "\n\n\n")
        #expect(blocks.count == 2)
        let first = blocks[0].split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.hasPrefix("#") }
        #expect(first == ["256 1.5 1.25 2", "512 NaN NaN NaN"])
        let third = blocks[1].split(separator: "\n").map(String.init)
        #expect(third[0] == "# index 1: \"third\" (y = y2)")
        #expect(third[1] == "# x y ylow yhigh")
        #expect(Array(third[2...]) == ["0.125 NaN NaN NaN", "1e-07 3 3 3"])
        #expect(data.hasPrefix("# blocks.dat: data of blocks.gp"))
        #expect(data.contains("# index 0: \"first\" (y = GFLOP/s)"))
        // The script's indexes follow the blocks: the empty series is skipped in both.
        let script = gnuplotScript(for: chart)
        #expect(script.contains("data index 0 using 1:2 with linespoints lt 1 title \"first\""))
        #expect(script.contains("data index 1 using 1:2 axes x1y2 with linespoints lt 2 title \"third\""))
        #expect(!script.contains("\"empty\""))
    }

    @Test("the latency CDF is a staircase of percentiles, thinned above the point limit")
    func cdf() throws {
        let chart = Chart.latencyCDF(samplesByLabel: ["b": [4, 1, 3, 2], "a": [5, 0, -1, .nan, 10]], maxPointsPerSeries: 2000)
        #expect(chart.series.map(\.title) == ["a (n = 2)", "b (n = 4)"])
        #expect(chart.series[1].points == [
            DataPoint(x: 1, y: 25), DataPoint(x: 2, y: 50), DataPoint(x: 3, y: 75), DataPoint(x: 4, y: 100),
        ])
        #expect(chart.notes == ["a: 3 zero, negative or non-finite samples left out"])
        let many = Chart.latencyCDF(samplesByLabel: ["x": (1...10_000).map(Double.init)], maxPointsPerSeries: 101)
        let points = many.series[0].points
        #expect(points.count == 101)
        #expect(points.first == DataPoint(x: 1, y: 0.01))
        #expect(points.last == DataPoint(x: 10_000, y: 100))
        #expect(zip(points, points.dropFirst()).allSatisfy { $0.x < $1.x && $0.y < $1.y })
    }
}

@Suite("Writing and rendering charts")
struct RenderTests {
    static let pngMagic: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    @Test("each of bench's charts renders to a PNG and an SVG with the real gnuplot", arguments: Examples.names)
    func renders(name: String) throws {
        let chart = Examples.named(name)
        try #require(gnuplotAvailable(), "gnuplot is not installed: sudo apt-get install gnuplot-nox (scripts/install-deps.sh)")
        let folder = try ChartFolder()
        defer { folder.cleanUp() }
        let files = try writeChart(chart, directory: folder.path)
        #expect(files.script == folder.path + "/" + chart.fileStem + ".gp")
        let rendered = try render(files)
        #expect(rendered == [files.png, files.svg])
        let png = try Data(contentsOf: URL(fileURLWithPath: files.png))
        #expect(png.count > 1000)
        #expect(Array(png.prefix(8)) == Self.pngMagic)
        let svg = try String(contentsOfFile: files.svg, encoding: .utf8)
        #expect(svg.contains("<svg"))
        #expect(svg.contains("</svg>"))
    }

    @Test("the rendered folder can be moved and re-rendered: the script uses relative paths")
    func relocatable() throws {
        try #require(gnuplotAvailable(), "gnuplot is not installed: sudo apt-get install gnuplot-nox")
        let folder = try ChartFolder()
        defer { folder.cleanUp() }
        let files = try writeChart(Examples.overhead, directory: folder.path + "/original")
        let moved = folder.path + "/moved"
        try FileManager.default.moveItem(atPath: folder.path + "/original", toPath: moved)
        let movedFiles = ChartFiles(directory: moved, stem: files.stem)
        try render(movedFiles)
        #expect(FileManager.default.fileExists(atPath: movedFiles.png))
        #expect(!FileManager.default.fileExists(atPath: files.png))
    }

    @Test("special characters reach the SVG as literal, well-escaped text")
    func svgText() throws {
        try #require(gnuplotAvailable(), "gnuplot is not installed: sudo apt-get install gnuplot-nox")
        let folder = try ChartFolder()
        defer { folder.cleanUp() }
        let chart = Chart(
            fileStem: "special", title: "commit_latency_ms \"p99\" & <b> @x n^2", xLabel: "size_n (ü)", yLabel: "ms",
            series: [Series(title: "a_b", xy: [(x: 1, y: 1), (x: 2, y: 3)])])
        try drawChart(chart, directory: folder.path)
        let svg = try String(contentsOfFile: folder.path + "/special.svg", encoding: .utf8)
        #expect(svg.contains("commit_latency_ms \"p99\" &amp; &lt;b> @x n^2"))
        #expect(svg.contains("size_n (ü)"))
        #expect(svg.contains(">a_b<"))
    }

    @Test("a missing gnuplot gives an error that says how to install it")
    func missingGnuplot() throws {
        let folder = try ChartFolder()
        defer { folder.cleanUp() }
        let files = try writeChart(Examples.failover, directory: folder.path)
        for name in ["/nonexistent/bin/gnuplot", "gnuplot-that-does-not-exist"] {
            let error = #expect(throws: ChartError.self) { try render(files, gnuplot: name) }
            #expect(error == .gnuplotNotFound(name))
            #expect(error?.description.contains("apt-get install gnuplot-nox") == true)
            #expect(error?.description.contains("scripts/install-deps.sh") == true)
        }
        #expect(!gnuplotAvailable("/nonexistent/bin/gnuplot"))
        // The script and data were written anyway.
        #expect(FileManager.default.fileExists(atPath: files.script))
        #expect(FileManager.default.fileExists(atPath: files.data))
    }

    @Test("a failing script reports gnuplot's message")
    func failingScript() throws {
        try #require(gnuplotAvailable(), "gnuplot is not installed: sudo apt-get install gnuplot-nox")
        let folder = try ChartFolder()
        defer { folder.cleanUp() }
        let files = try writeChart(Examples.overhead, directory: folder.path)
        try "set this is not gnuplot\n".write(toFile: files.script, atomically: true, encoding: .utf8)
        let error = #expect(throws: ChartError.self) { try render(files) }
        guard case .gnuplotFailed(let script, let status, let output) = error else {
            Issue.record("expected gnuplotFailed, got \(String(describing: error))")
            return
        }
        #expect(script == files.script)
        #expect(status != 0)
        #expect(!output.isEmpty)
    }

    @Test("charts that cannot be drawn are refused before gnuplot runs")
    func invalidCharts() throws {
        let folder = try ChartFolder()
        defer { folder.cleanUp() }
        let valid = Chart(fileStem: "ok", title: "t", xLabel: "x", yLabel: "y", series: [Series(title: "a", xy: [(x: 1, y: 1)])])
        var badStem = valid
        badStem.fileStem = "../escape"
        var empty = valid
        empty.series = [Series(title: "a", points: [])]
        var logZero = valid
        logZero.xLog = true
        logZero.series = [Series(title: "a", xy: [(x: 0, y: 1), (x: 1, y: 2)])]
        for chart in [badStem, empty, logZero] {
            let error = #expect(throws: ChartError.self) { try writeChart(chart, directory: folder.path) }
            guard case .invalidChart = error else {
                Issue.record("expected invalidChart for \(chart.fileStem), got \(String(describing: error))")
                continue
            }
        }
        #expect((try FileManager.default.contentsOfDirectory(atPath: folder.path)).isEmpty || folder.keep)
    }
}
