import GatewayCore
import Prometheus

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The process's CPU time, memory, file descriptors and start time under the names every Prometheus
/// client library gives them (`process_*`), read from `/proc` at each scrape. Where there is no
/// `/proc/self/stat` (not Linux), there are none.
final class ProcessMetrics: Sendable {
    /// The fields of `/proc/self/stat` the metrics read (proc_pid_stat(5)).
    struct Stat: Equatable {
        /// CPU time in user and kernel mode, in clock ticks.
        var userTicks: UInt64
        var systemTicks: UInt64
        /// When the process started, in clock ticks after boot.
        var startTicks: UInt64
        var virtualMemoryBytes: UInt64
        var residentPages: UInt64
    }

    private let cpuSeconds: Counter
    private let residentMemory: Gauge
    private let virtualMemory: Gauge
    private let openFileDescriptors: Gauge
    private let maxFileDescriptors: Gauge
    private let ticksPerSecond: UInt64
    private let pageSize: UInt64
    /// The CPU ticks already in `cpuSeconds`: each scrape adds what was spent since.
    private let ticksCounted = Locked<UInt64>(0)

    /// The process metrics, made on `registry`; `nil` where `/proc/self/stat` cannot be read.
    init?(registry: PrometheusCollectorRegistry) {
        guard let text = Self.readFile("/proc/self/stat"), let stat = Self.parseStat(text) else { return nil }
        ticksPerSecond = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        pageSize = UInt64(max(1, sysconf(Int32(_SC_PAGESIZE))))
        cpuSeconds = registry.makeCounter(
            descriptor: Self.descriptor("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
        )
        residentMemory = registry.makeGauge(
            descriptor: Self.descriptor("process_resident_memory_bytes", "Resident memory size in bytes.")
        )
        virtualMemory = registry.makeGauge(
            descriptor: Self.descriptor("process_virtual_memory_bytes", "Virtual memory size in bytes.")
        )
        openFileDescriptors = registry.makeGauge(
            descriptor: Self.descriptor("process_open_fds", "Number of open file descriptors.")
        )
        maxFileDescriptors = registry.makeGauge(
            descriptor: Self.descriptor("process_max_fds", "Maximum number of open file descriptors.")
        )
        if let bootTime = Self.readFile("/proc/stat").flatMap(Self.parseBootTime) {
            registry.makeGauge(
                descriptor: Self.descriptor(
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds."
                )
            ).set(to: Double(bootTime) + Double(stat.startTicks) / Double(ticksPerSecond))
        }
        record(stat)
    }

    /// Reads `/proc` again and sets the metrics; called before each scrape.
    func update() {
        guard let text = Self.readFile("/proc/self/stat"), let stat = Self.parseStat(text) else { return }
        record(stat)
    }

    private func record(_ stat: Stat) {
        // Two scrapes at once may read in one order and get here in the other: fewer ticks than counted
        // is an older reading.
        ticksCounted.withLock { counted in
            let ticks = stat.userTicks + stat.systemTicks
            guard ticks > counted else { return }
            cpuSeconds.increment(by: Double(ticks - counted) / Double(ticksPerSecond))
            counted = ticks
        }
        residentMemory.set(to: Double(stat.residentPages * pageSize))
        virtualMemory.set(to: Double(stat.virtualMemoryBytes))
        if let open = Self.countOpenFileDescriptors() { openFileDescriptors.set(Int64(open)) }
        var limit = rlimit()
        if getrlimit(Self.fileDescriptorLimit, &limit) == 0 {
            maxFileDescriptors.set(to: Double(limit.rlim_cur))
        }
    }

    /// The fields of a `/proc/<pid>/stat` line, or `nil` when it is not one. The command name, the second
    /// field, is in parentheses and may hold spaces and parentheses of its own: the fields after it are
    /// counted from the last `)`.
    static func parseStat(_ text: String) -> Stat? {
        guard let close = text.utf8.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // From the state (field 3 of proc_pid_stat(5)) on; field n is at n - 3.
        let fields = text[text.utf8.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        func field(_ number: Int) -> UInt64? {
            fields.count > number - 3 ? UInt64(fields[number - 3]) : nil
        }
        guard let user = field(14), let system = field(15), let start = field(22), let virtual = field(23),
            let resident = field(24)
        else { return nil }
        return Stat(
            userTicks: user,
            systemTicks: system,
            startTicks: start,
            virtualMemoryBytes: virtual,
            residentPages: resident
        )
    }

    /// The boot time, in seconds since the epoch, from the `btime` line of `/proc/stat`.
    static func parseBootTime(_ text: String) -> UInt64? {
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count == 2, fields[0] == "btime" { return UInt64(fields[1]) }
        }
        return nil
    }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    #if canImport(Glibc)
    private static let fileDescriptorLimit = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
    private static let fileDescriptorLimit = RLIMIT_NOFILE
    #endif

    /// The entries of `/proc/self/fd` (as other client libraries count them, the directory's own
    /// descriptor among them).
    private static func countOpenFileDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let isDots = withUnsafeBytes(of: entry.pointee.d_name) { name in
                name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
            }
            if !isDots { count += 1 }
        }
        return count
    }

    /// The whole of a small file (`/proc` files say their size is 0, so it is read to the end).
    private static func readFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            bytes.append(contentsOf: chunk[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
