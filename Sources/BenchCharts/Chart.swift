/// Which y axis a series or horizontal line belongs to: the left (`y1`) or the right (`y2`).
public enum Axis: String, Sendable, Hashable, Codable {
    case y1
    case y2
}

/// How a series is drawn.
public enum SeriesStyle: String, Sendable, Hashable, Codable {
    /// Straight segments between points.
    case lines
    /// Points only.
    case points
    /// Segments and points.
    case linespoints
    /// Points with vertical error bars from `yLow` to `yHigh` (gnuplot `yerrorbars`).
    case errorbars
    /// Segments and points with error bars (gnuplot `yerrorlines`).
    case errorlines
    /// A staircase: horizontal, then vertical (gnuplot `steps`), for CDFs and counters.
    case steps
}

/// One point of a series. `yLow`/`yHigh` bound an interval (a confidence interval, say) drawn by the
/// error-bar styles; without them the bar has zero length.
public struct DataPoint: Sendable, Hashable, Codable {
    public var x: Double
    public var y: Double
    public var yLow: Double?
    public var yHigh: Double?

    public init(x: Double, y: Double, yLow: Double? = nil, yHigh: Double? = nil) {
        self.x = x
        self.y = y
        self.yLow = yLow
        self.yHigh = yHigh
    }
}

/// A named set of points drawn in one style. Non-finite values are written as NaN, which gnuplot
/// skips.
public struct Series: Sendable, Hashable, Codable {
    /// The legend entry; empty for none.
    public var title: String
    public var points: [DataPoint]
    public var style: SeriesStyle
    public var axis: Axis
    /// Dashed (for fitted or ideal curves).
    public var dashed: Bool
    /// The script's line type (1...8: colour, point shape) to draw with; nil takes the next one in
    /// order. Giving a fitted curve the line type of its data pairs their colours.
    public var lineType: Int?

    public init(
        title: String, points: [DataPoint], style: SeriesStyle = .linespoints, axis: Axis = .y1,
        dashed: Bool = false, lineType: Int? = nil
    ) {
        self.title = title
        self.points = points
        self.style = style
        self.axis = axis
        self.dashed = dashed
        self.lineType = lineType
    }

    /// A series from plain (x, y) pairs.
    public init(
        title: String, xy: [(x: Double, y: Double)], style: SeriesStyle = .linespoints, axis: Axis = .y1,
        dashed: Bool = false, lineType: Int? = nil
    ) {
        self.init(
            title: title, points: xy.map { DataPoint(x: $0.x, y: $0.y) }, style: style, axis: axis,
            dashed: dashed, lineType: lineType)
    }
}

/// A target (or reference) drawn as a dashed red line across the plot with a label: "target 10 %"
/// (horizontal), "target: recovered within 5 s" (vertical).
public struct TargetLine: Sendable, Hashable, Codable {
    public enum Orientation: String, Sendable, Hashable, Codable {
        /// At y = `value` on `axis`, across the whole width.
        case horizontal
        /// At x = `value`, across the whole height.
        case vertical
    }

    public var orientation: Orientation
    public var value: Double
    public var label: String
    /// For horizontal lines: which y axis `value` is on.
    public var axis: Axis

    public init(orientation: Orientation, value: Double, label: String, axis: Axis = .y1) {
        self.orientation = orientation
        self.value = value
        self.label = label
        self.axis = axis
    }

    /// A horizontal line at `y`.
    public static func horizontal(y: Double, label: String, axis: Axis = .y1) -> TargetLine {
        TargetLine(orientation: .horizontal, value: y, label: label, axis: axis)
    }

    /// A vertical line at `x`.
    public static func vertical(x: Double, label: String) -> TargetLine {
        TargetLine(orientation: .vertical, value: x, label: label)
    }
}

/// An event drawn as a grey dotted vertical line with a label written along it near the top:
/// "leader killed", "new leader", "recovered", "agents > cores".
public struct Marker: Sendable, Hashable, Codable {
    public var x: Double
    public var label: String

    public init(x: Double, label: String) {
        self.x = x
        self.label = label
    }
}

/// Where the legend goes. Inside positions have an opaque white box, so pick a corner the data
/// leaves empty; `below` and `outsideRight` never cover data.
public enum KeyPosition: String, Sendable, Hashable, Codable {
    case topLeft
    case topRight
    case bottomLeft
    case bottomRight
    /// Right of the plot, outside it.
    case outsideRight
    /// Under the x axis label, entries side by side.
    case below
    /// No legend.
    case hidden
}

/// Where the labels of vertical lines (markers, vertical targets) are written along their line:
/// from the top edge down or from the bottom edge up, preferably on the left or the right side of
/// the line (the other side, or a second band half-way, is used when labels would collide). Pick
/// the end and side the data leaves empty.
public enum EventLabelPosition: String, Sendable, Hashable, Codable {
    case topLeft
    case topRight
    case bottomLeft
    case bottomRight

    var atTop: Bool { self == .topLeft || self == .topRight }
    var prefersLeft: Bool { self == .topLeft || self == .bottomLeft }
}

/// Fixed ends of an axis; nil ends are autoscaled (and widened to show any target on that axis).
public struct AxisRange: Sendable, Hashable, Codable {
    public var min: Double?
    public var max: Double?

    public init(min: Double? = nil, max: Double? = nil) {
        self.min = min
        self.max = max
    }
}

/// A chart, declared: what to draw, not how. `writeChart` turns it into `<fileStem>.dat` and
/// `<fileStem>.gp`, and `render` has gnuplot draw `<fileStem>.png` and `<fileStem>.svg`.
///
/// Axis labels should carry units ("matrix size n", "throughput (GFLOP/s)"). All text is drawn
/// literally (gnuplot's enhanced-text mode is off), so underscores in metric names stay underscores.
public struct Chart: Sendable, Hashable, Codable {
    /// The file name without extension: letters, digits, '.', '_' and '-' only, not starting with
    /// '.' (e.g. "scaling-run42-efficiency").
    public var fileStem: String
    public var title: String
    public var xLabel: String
    public var yLabel: String
    /// The right axis' label; set it when a series or target uses `.y2`.
    public var y2Label: String?
    public var xLog: Bool
    public var yLog: Bool
    public var y2Log: Bool
    public var xRange: AxisRange?
    public var yRange: AxisRange?
    public var y2Range: AxisRange?
    /// Explicit x tic positions (e.g. the matrix sizes measured); nil lets gnuplot choose.
    public var xTics: [Double]?
    public var series: [Series]
    public var targets: [TargetLine]
    public var markers: [Marker]
    public var key: KeyPosition
    /// Where marker and vertical-target labels go.
    public var eventLabels: EventLabelPosition
    /// Pixel size of the PNG (and nominal size of the SVG, which scales).
    public var width: Int
    public var height: Int
    /// Extra lines for the script's header comment (source run, command line, ...).
    public var notes: [String]

    public init(
        fileStem: String, title: String, xLabel: String, yLabel: String, y2Label: String? = nil,
        xLog: Bool = false, yLog: Bool = false, y2Log: Bool = false, xRange: AxisRange? = nil,
        yRange: AxisRange? = nil, y2Range: AxisRange? = nil, xTics: [Double]? = nil, series: [Series],
        targets: [TargetLine] = [], markers: [Marker] = [], key: KeyPosition = .topLeft,
        eventLabels: EventLabelPosition = .topLeft, width: Int = 1000, height: Int = 620, notes: [String] = []
    ) {
        self.fileStem = fileStem
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.y2Label = y2Label
        self.xLog = xLog
        self.yLog = yLog
        self.y2Log = y2Log
        self.xRange = xRange
        self.yRange = yRange
        self.y2Range = y2Range
        self.xTics = xTics
        self.series = series
        self.targets = targets
        self.markers = markers
        self.key = key
        self.eventLabels = eventLabels
        self.width = width
        self.height = height
        self.notes = notes
    }
}

/// The files of a written chart. The paths are absolute (or relative to the working directory, as
/// the directory given to `writeChart` was); `png` and `svg` exist once `render` succeeded.
public struct ChartFiles: Sendable, Hashable, Codable {
    public var directory: String
    public var stem: String
    public var data: String
    public var script: String
    public var png: String
    public var svg: String

    public init(directory: String, stem: String) {
        self.directory = directory
        self.stem = stem
        let prefix = directory.hasSuffix("/") ? directory + stem : directory + "/" + stem
        data = prefix + ".dat"
        script = prefix + ".gp"
        png = prefix + ".png"
        svg = prefix + ".svg"
    }
}
