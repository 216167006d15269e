import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The level every ``GatewayLogHandler`` logs at, shared so that a configuration reload changes it for all
/// loggers at once.
public final class LogLevelControl: Sendable {
    private let level: Atomic<Int>

    /// Starts at `level`.
    public init(_ level: Logger.Level) { self.level = Atomic(Self.levels.firstIndex(of: level) ?? 2) }

    private static let levels: [Logger.Level] = [.trace, .debug, .info, .notice, .warning, .error, .critical]

    /// The level in force.
    public var current: Logger.Level {
        get { Self.levels[level.load(ordering: .relaxed)] }
        set { level.store(Self.levels.firstIndex(of: newValue) ?? 2, ordering: .relaxed) }
    }
}

/// The gateway's swift-log handler: one JSON object per line (`time`, `level`, `label`, `message`, then
/// every metadata value as a string) for log collectors, or one plain line for a terminal.
public struct GatewayLogHandler: LogHandler {
    /// How lines look.
    public enum Format: Sendable {
        case json
        case text
    }

    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?

    private let label: String
    private let format: Format
    private let control: LogLevelControl
    /// Where lines are built in place, in the output's pending bytes; else they go to `write`.
    private let output: BufferedOutput?
    /// Takes each line, built apart, as a string, when there is no `output`.
    private let write: (@Sendable (String) -> Void)?

    /// A handler for `label` writing to `output` (standard output by default), at the level `control`
    /// says.
    public init(
        label: String,
        format: Format = .json,
        control: LogLevelControl = LogLevelControl(.info),
        output: BufferedOutput = .standardOutput
    ) {
        self.init(label: label, format: format, control: control, output: output, write: nil)
    }

    /// A handler for `label` handing each line, newline included, to `write`.
    public init(
        label: String,
        format: Format = .json,
        control: LogLevelControl = LogLevelControl(.info),
        write: @escaping @Sendable (String) -> Void
    ) {
        self.init(label: label, format: format, control: control, output: nil, write: write)
    }

    private init(
        label: String,
        format: Format,
        control: LogLevelControl,
        output: BufferedOutput?,
        write: (@Sendable (String) -> Void)?
    ) {
        self.label = label
        self.format = format
        self.control = control
        self.output = output
        self.write = write
    }

    /// Writes the line `build` appends (newline included). `build` only appends bytes: with a
    /// ``BufferedOutput`` it runs while the thread's pending bytes are held.
    private func emit(_ build: (inout [UInt8]) -> Void) {
        // Used where it is (`?.`), not bound to a name: a binding would retain the output, whose reference
        // count every event loop would then write on every line.
        if output != nil {
            output?.append(build)
            return
        }
        var line: [UInt8] = []
        line.reserveCapacity(320)
        build(&line)
        write?(String(decoding: line, as: UTF8.self))
    }

    public var logLevel: Logger.Level {
        get { control.current }
        set { control.current = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        // Usually only the event has metadata (the access log's fields): no merging then.
        var merged = event.metadata ?? [:]
        if !metadata.isEmpty || metadataProvider != nil {
            merged = metadata
            if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
            if let extra = event.metadata { merged.merge(extra) { $1 } }
        }
        let fields = merged.sorted(by: { $0.key < $1.key })
        if format == .text {
            let pairs = fields.map { " \($0.key)=\($0.value)" }.joined()
            let text = "\(Self.timestamp()) \(event.level) \(label): \(event.message)\(pairs)\n"
            emit { $0.append(contentsOf: text.utf8) }
            return
        }
        // Built as bytes: one line per request when the access log is on, so strings put together piece by
        // piece would cost more than answering the request.
        // Values are described before the line is built in the output: a description that logs would
        // otherwise find the output busy with this very line.
        let message = event.message.description
        let texts = fields.map { field -> (String, String, Bool) in
            switch field.value {
            case .string(let text): return (field.key, text, false)
            case .stringConvertible(let number as JSONNumber): return (field.key, number.description, true)
            default: return (field.key, field.value.description, false)
            }
        }
        emit { line in
            appendJSONStart(level: event.level, message: message, to: &line)
            for (key, text, isNumber) in texts {
                line.append(UInt8(ascii: ","))
                JSONText.appendQuoted(key, to: &line)
                line.append(UInt8(ascii: ":"))
                if isNumber {
                    line.append(contentsOf: text.utf8)
                } else {
                    JSONText.appendQuoted(text, to: &line)
                }
            }
            Self.append("}\n", to: &line)
        }
    }

    /// Whether ``logAccess(_:)`` writes its line itself: in JSON, with no metadata of the handler's own.
    public var logsAccessDirectly: Bool { format == .json && metadata.isEmpty && metadataProvider == nil }

    /// Logs `entry` at `info` (when the level allows): the line ``log(event:)`` writes for the entry's
    /// ``AccessLogEntry/metadata``, written without building and sorting a dictionary, since the access
    /// log writes one per request.
    public func logAccess(_ entry: AccessLogEntry) {
        guard control.current <= .info else { return }
        guard logsAccessDirectly else {
            log(
                event: LogEvent(
                    level: .info,
                    message: AccessLogEntry.message,
                    metadata: entry.metadata,
                    source: label,
                    file: #fileID,
                    function: #function,
                    line: #line
                )
            )
            return
        }
        emit { line in
            appendJSONStart(level: .info, message: Self.accessMessage, to: &line)
            entry.forEachField { name, value in
                // The names are the entry's own, plain ASCII: written as they are.
                line.append(UInt8(ascii: ","))
                line.append(UInt8(ascii: "\""))
                Self.append(name, to: &line)
                line.append(UInt8(ascii: "\""))
                line.append(UInt8(ascii: ":"))
                value.appendJSON(to: &line)
            }
            Self.append("}\n", to: &line)
        }
    }

    /// ``AccessLogEntry/message`` as text, made once.
    private static let accessMessage = AccessLogEntry.message.description

    /// `{"time":...,"level":...,"label":...,"message":...`: what every JSON line starts with.
    private func appendJSONStart(level: Logger.Level, message: String, to line: inout [UInt8]) {
        Self.append(#"{"time":""#, to: &line)
        Self.appendTimestamp(to: &line)
        Self.append(#"","level":""#, to: &line)
        line.append(contentsOf: level.rawValue.utf8)
        Self.append(#"","label":"#, to: &line)
        JSONText.appendQuoted(label, to: &line)
        Self.append(#","message":"#, to: &line)
        JSONText.appendQuoted(message, to: &line)
    }

    /// Appends `text`'s bytes in one copy.
    private static func append(_ text: StaticString, to line: inout [UInt8]) {
        line.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Now, in UTC, as RFC 3339 with milliseconds: `2026-11-29T09:10:38.123Z`.
    static func timestamp() -> String {
        var bytes: [UInt8] = []
        appendTimestamp(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends ``timestamp()``'s text to `output`.
    static func appendTimestamp(to output: inout [UInt8]) {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        appendTimestamp(seconds: Int(spec.tv_sec), milliseconds: Int(spec.tv_nsec / 1_000_000), to: &output)
    }

    /// Each thread's last second as text (`2026-11-29T09:10:38`): the lines of one second all start alike,
    /// so the calendar is worked out once a second rather than once a line.
    private static let secondText = PerThread<(second: Int, text: [UInt8])> { (Int.min, []) }

    /// Appends the time `seconds` after 1970 (UTC) and `milliseconds`, as ``timestamp()`` writes it.
    static func appendTimestamp(seconds: Int, milliseconds: Int, to output: inout [UInt8]) {
        secondText.withLocal { cached in
            if cached.second != seconds { cached = (seconds, calendarText(seconds)) }
            output.append(contentsOf: cached.text)
        }
        output.append(UInt8(ascii: "."))
        appendDigits(Int32(milliseconds), width: 3, to: &output)
        output.append(UInt8(ascii: "Z"))
    }

    /// `seconds` after 1970 as `YYYY-MM-DDTHH:MM:SS`, in UTC.
    private static func calendarText(_ seconds: Int) -> [UInt8] {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var text: [UInt8] = []
        text.reserveCapacity(19)
        appendDigits(parts.tm_year + 1900, width: 4, to: &text)
        text.append(UInt8(ascii: "-"))
        appendDigits(parts.tm_mon + 1, width: 2, to: &text)
        text.append(UInt8(ascii: "-"))
        appendDigits(parts.tm_mday, width: 2, to: &text)
        text.append(UInt8(ascii: "T"))
        appendDigits(parts.tm_hour, width: 2, to: &text)
        text.append(UInt8(ascii: ":"))
        appendDigits(parts.tm_min, width: 2, to: &text)
        text.append(UInt8(ascii: ":"))
        appendDigits(parts.tm_sec, width: 2, to: &text)
        return text
    }

    /// `value` in decimal, zero-padded to `width` digits (its last `width` digits if longer).
    private static func appendDigits(_ value: Int32, width: Int, to output: inout [UInt8]) {
        var divisor: Int32 = 1
        for _ in 1..<width { divisor *= 10 }
        var rest = max(0, value)
        while divisor > 0 {
            output.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: (rest / divisor) % 10))
            rest %= divisor
            divisor /= 10
        }
    }
}

/// Writes all of `bytes` to `descriptor`, giving up on an error.
func writeAll(_ bytes: [UInt8], to descriptor: Int32) {
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if written <= 0 { return }
        offset += written
    }
}
