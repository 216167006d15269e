import GatewayCore
import Logging
import Synchronization

/// Collects log lines in memory, as the gateway's JSON log handler writes them.
public final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])

    public init() {}

    /// Every line so far, in order.
    public var all: [String] { lines.withLock { $0 } }

    /// A logger whose lines are collected here.
    public func logger(label: String = "access") -> Logger {
        Logger(label: label) { label in
            GatewayLogHandler(label: label, format: .json, control: LogLevelControl(.info)) { line in
                self.lines.withLock { $0.append(line) }
            }
        }
    }
}
