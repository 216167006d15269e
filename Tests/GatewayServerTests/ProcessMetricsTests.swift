import Prometheus
import Testing

@testable import GatewayServer

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("ProcessMetrics")
struct ProcessMetricsTests {
    /// A `/proc/self/stat` line after the command name, from the state (field 3) to field 30: utime 1234,
    /// stime 567, starttime 3363003, vsize 3133440, rss 384.
    private static let afterName =
        " R 25827 25827 18469 0 -1 4194304 100 0 0 0 1234 567 0 0 20 0 1 0 3363003 3133440 384"
        + " 18446744073709551615 93896921075712 93896921095593 140727328989584 0 0 0 0 0\n"

    private static let expected = ProcessMetrics.Stat(
        userTicks: 1234,
        systemTicks: 567,
        startTicks: 3_363_003,
        virtualMemoryBytes: 3_133_440,
        residentPages: 384
    )

    /// The command name may hold spaces and parentheses, `) (` among them: the fields are counted from the
    /// last `)`.
    @Test(arguments: ["(xi-gateway)", "(a b)", "(x) (y)", "(:) (1 2 3 4 5 6 7 8 9 10 11 12 13)", "())"])
    func statFieldsAreReadAfterTheCommandName(name: String) {
        #expect(ProcessMetrics.parseStat("25831 " + name + Self.afterName) == Self.expected)
    }

    @Test(arguments: [
        "",
        "25831 xi-gateway R 1 2 3",
        "25831 (xi-gateway) R 25827 25827 18469 0 -1 4194304 100 0 0 0 1234 567 0 0 20 0 1 0 3363003 3133440",
        "25831 (xi-gateway) R 25827 25827 18469 0 -1 4194304 100 0 0 0 x 567 0 0 20 0 1 0 3363003 3133440 384",
    ])
    func aLineWithoutTheFieldsIsNotAStat(text: String) {
        #expect(ProcessMetrics.parseStat(text) == nil)
    }

    @Test func theBootTimeIsTheBtimeLine() {
        let text = "cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 5 6\nctxt 7\nbtime 1796549020\nprocesses 8\n"
        #expect(ProcessMetrics.parseBootTime(text) == 1_796_549_020)
        #expect(ProcessMetrics.parseBootTime("cpu 1 2\nctxt 3\n") == nil)
    }

    #if os(Linux)
    /// On Linux a scrape reads this process's own figures.
    @Test func aScrapeReadsThisProcess() throws {
        let registry = PrometheusCollectorRegistry()
        let metrics = try #require(ProcessMetrics(registry: registry))
        metrics.update()
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        let exposition = Exposition(String(decoding: bytes, as: UTF8.self))

        #expect((exposition.value("process_resident_memory_bytes") ?? 0) > 0)
        #expect((exposition.value("process_virtual_memory_bytes") ?? 0) > 0)
        #expect((exposition.value("process_open_fds") ?? 0) > 0)
        #expect((exposition.value("process_max_fds") ?? 0) > 0)
        #expect((exposition.value("process_cpu_seconds_total") ?? -1) >= 0)
        let start = exposition.value("process_start_time_seconds") ?? 0
        #expect(start > 1_500_000_000 && start <= Double(time(nil)) + 1)
    }
    #endif
}
