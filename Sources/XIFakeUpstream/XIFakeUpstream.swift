import Dispatch
import GatewayCore
import GatewayTesting
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// `xi-fake-upstream`: the list endpoint, faked on loopback for benchmarks. Pages echo their query (about
/// 10 KB at 30 items), every answer waits `--latency-ms`, and more than `--max-concurrent` overlapping
/// requests get the upstream's 429. `GET /__stats` reports the counts as JSON; `POST /__reset` clears them.
@main
enum XIFakeUpstream {
    static let usage = """
        Usage: xi-fake-upstream [--port N] [--latency-ms MS] [--max-concurrent K] [--threads N] [--faults P]
          --port            port on 127.0.0.1 (default 0: a free one, printed)
          --latency-ms      delay of every answer (default 50, like a remote API)
          --max-concurrent  answer 429 when more than K requests overlap (default: no limit)
          --threads         event loop threads (default 1)
          --faults          percent of answers that go wrong, evenly spread over: slow (3 s), reset
                            mid-body, dropped without an answer, 500, 429 with Retry-After: 1, 429 without,
                            a 200 that is not JSON (default 0)
        """

    static func main() async throws {
        var port = 0
        var latency = 50
        var maxConcurrent = Int.max
        var threads = 1
        var faults = 0
        var arguments = CommandLine.arguments.dropFirst()
        while let flag = arguments.popFirst() {
            guard flag != "--help" else {
                print(usage)
                return
            }
            guard let value = arguments.popFirst().flatMap({ Int($0) }), value >= 0 else {
                print("xi-fake-upstream: \(flag) needs a number\n\n\(usage)")
                exit(64)
            }
            switch flag {
            case "--port": port = value
            case "--latency-ms": latency = value
            case "--max-concurrent": maxConcurrent = value
            case "--threads": threads = max(1, value)
            case "--faults": faults = min(100, value)
            default:
                print("xi-fake-upstream: unknown argument \(flag)\n\n\(usage)")
                exit(64)
            }
        }

        let delay = TimeAmount.milliseconds(Int64(latency))
        let limit = maxConcurrent
        let faultPercent = faults
        let box = UpstreamBox()
        let started: FakeUpstream
        do {
            started = try await FakeUpstream.start(port: port, threads: threads, recordRequests: false) { request in
                if request.uri.hasPrefix("/__stats") {
                    return .init(body: box.upstream?.statsJSON ?? "{}")
                }
                if request.uri.hasPrefix("/__reset") {
                    box.upstream?.resetCounts()
                    return .init(body: "{}")
                }
                if request.concurrent > limit {
                    return .init(
                        status: 429,
                        headers: [
                            ("Content-Type", "application/json"),
                            ("current-concurrent-requests", String(request.concurrent)),
                            ("maximum-concurrent-requests", String(limit)),
                        ],
                        body:
                            #"{"detail":{"status":"too_many_concurrent_requests","message":"Too many concurrent requests"}}"#,
                        delay: .milliseconds(5)
                    )
                }
                if faultPercent > 0, Int.random(in: 0..<100) < faultPercent {
                    return fault(for: request.uri, delay: delay)
                }
                return .page(for: request.uri, delay: delay)
            }
        } catch {
            // Most often the port is taken: one line, not a crash report.
            print("xi-fake-upstream: cannot listen on 127.0.0.1:\(port): \(error)")
            exit(1)
        }
        let upstream = started
        box.upstream = upstream
        print("xi-fake-upstream listening on 127.0.0.1:\(upstream.port)")
        fflush(nil)

        let queue = DispatchQueue(label: "xi-fake-upstream.signals")
        let signals = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            return DispatchSource.makeSignalSource(signal: number, queue: queue)
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let once = OnceFlag()
            for source in signals {
                // Runs on `queue`, not on the main actor: without `@Sendable` the closure would be taken as
                // the main actor's, and Swift 6 stops the process (SIGILL) when the signal arrives.
                source.setEventHandler { @Sendable in if once.fire() { continuation.resume() } }
                source.resume()
            }
        }
        for source in signals { source.cancel() }
        try await upstream.shutdown()
    }
}

/// One of the faults a real upstream shows, chosen at random.
private func fault(for uri: String, delay: TimeAmount) -> FakeUpstream.Reply {
    let json = [("Content-Type", "application/json")]
    switch Int.random(in: 0..<7) {
    case 0: return .page(for: uri, delay: .seconds(3))
    case 1: return .init(body: FakeUpstream.page(for: uri), delay: delay, delivery: .dropMidBody)
    case 2: return .init(body: "", delay: delay, delivery: .dropConnection)
    case 3: return .init(status: 500, headers: json, body: #"{"detail":"Internal Server Error"}"#, delay: delay)
    case 4:
        return .init(
            status: 429,
            headers: json + [("Retry-After", "1")],
            body: #"{"detail":{"status":"rate_limit_exceeded","message":"slow down"}}"#,
            delay: delay
        )
    case 5:
        return .init(
            status: 429,
            headers: json,
            body: #"{"detail":{"status":"system_busy","message":"busy"}}"#,
            delay: delay
        )
    default:
        return .init(body: "<html>maintenance</html>", delay: delay)
    }
}

extension FakeUpstream {
    /// Counts as JSON: requests, answers by status, the most requests that overlapped.
    var statsJSON: String {
        let statuses = statusCounts.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\($0.value)" }.joined(
            separator: ","
        )
        return "{\"requests\":\(requestCount),\"statuses\":{\(statuses)},\"max_concurrent\":\(maxConcurrentRequests)}"
    }
}

/// Lets the script reach the fake it belongs to, which exists only after the script is given.
final class UpstreamBox: @unchecked Sendable {
    // Written once before the first request can arrive, read afterwards.
    var upstream: FakeUpstream?
}

/// True the first time only.
final class OnceFlag: @unchecked Sendable {
    private var fired = false
    private let lock = DispatchQueue(label: "once")

    func fire() -> Bool {
        lock.sync {
            defer { fired = true }
            return !fired
        }
    }
}
