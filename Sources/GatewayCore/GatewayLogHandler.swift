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
    private let write: @Sendable (String) -> Void

    /// A handler for `label` writing each line with `write` (standard output by default), at the level
    /// `control` says.
    public init(
        label: String,
        format: Format = .json,
        control: LogLevelControl = LogLevelControl(.info),
        write: @escaping @Sendable (String) -> Void = GatewayLogHandler.standardOutput
    ) {
        self.label = label
        self.format = format
        self.control = control
        self.write = write
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
            write("\(Self.timestamp()) \(event.level) \(label): \(event.message)\(pairs)\n")
            return
        }
        // Built as bytes: one line per request when the access log is on, so strings put together piece by
        // piece would cost more than answering the request.
        var line: [UInt8] = []
        line.reserveCapacity(320)
        appendJSONStart(level: event.level, message: event.message.description, to: &line)
        for (key, value) in fields {
            line.append(UInt8(ascii: ","))
            JSONText.appendQuoted(key, to: &line)
            line.append(UInt8(ascii: ":"))
            if case .string(let text) = value {
                JSONText.appendQuoted(text, to: &line)
            } else {
                JSONText.appendQuoted(value.description, to: &line)
            }
        }
        Self.append("}\n", to: &line)
        write(String(decoding: line, as: UTF8.self))
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
        var line: [UInt8] = []
        line.reserveCapacity(320)
        appendJSONStart(level: .info, message: "\(AccessLogEntry.message)", to: &line)
        entry.forEachField { name, value in
            // The names are the entry's own, plain ASCII: written as they are.
            line.append(UInt8(ascii: ","))
            line.append(UInt8(ascii: "\""))
            Self.append(name, to: &line)
            line.append(UInt8(ascii: "\""))
            line.append(UInt8(ascii: ":"))
            JSONText.appendQuoted(value, to: &line)
        }
        Self.append("}\n", to: &line)
        write(String(decoding: line, as: UTF8.self))
    }

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

    /// Writes `line` to standard output through ``BufferedOutput``: whole lines, in batches.
    public static let standardOutput: @Sendable (String) -> Void = { line in
        BufferedOutput.standardOutput.write(line)
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
        var seconds = spec.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func append(_ value: Int32, width: Int) {
            var divisor: Int32 = 1
            for _ in 1..<width { divisor *= 10 }
            var rest = max(0, value)
            while divisor > 0 {
                output.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: (rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        append(parts.tm_year + 1900, width: 4)
        output.append(UInt8(ascii: "-"))
        append(parts.tm_mon + 1, width: 2)
        output.append(UInt8(ascii: "-"))
        append(parts.tm_mday, width: 2)
        output.append(UInt8(ascii: "T"))
        append(parts.tm_hour, width: 2)
        output.append(UInt8(ascii: ":"))
        append(parts.tm_min, width: 2)
        output.append(UInt8(ascii: ":"))
        append(parts.tm_sec, width: 2)
        output.append(UInt8(ascii: "."))
        append(Int32(spec.tv_nsec / 1_000_000), width: 3)
        output.append(UInt8(ascii: "Z"))
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
