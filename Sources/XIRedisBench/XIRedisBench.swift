import Foundation
import GatewayCore
import GatewayShared
import GatewayTesting
import Logging
import NIOCore
import NIOPosix

/// `xi-redis-bench`: the shared tier's Redis client (hiredis's reader and command formatting, driven by
/// SwiftNIO on the caller's event loop) against `redis-benchmark` (hiredis driven by its own C event loop),
/// on one `redis-server` it starts on a Unix socket: `GET`s one at a time (the round trip a miss pays) and
/// 16 pipelined on one connection. Rounds alternate between the two; medians and ratios are printed.
@main
enum XIRedisBench {
    static let usage = """
        Usage: xi-redis-bench [--requests N] [--rounds R]
          --requests  GETs per measurement (default 20000)
          --rounds    measurements of each, alternating (default 3)
        """

    struct Figures {
        var perSecond: Double
        var p50Microseconds: Double
        var p99Microseconds: Double
    }

    static func main() async throws {
        var requests = 20_000
        var rounds = 3
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            guard let value = arguments.popFirst().flatMap({ Int($0) }), value > 0 else {
                print(usage)
                exit(64)
            }
            switch argument {
            case "--requests": requests = value
            case "--rounds": rounds = value
            default:
                print(usage)
                exit(64)
            }
        }
        guard
            let peer = ["/usr/bin/redis-benchmark", "/usr/local/bin/redis-benchmark"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            print("xi-redis-bench: redis-benchmark is missing (Debian's redis-tools has it)")
            exit(1)
        }
        let server = try await RedisServer.start()
        guard case .unix(let socket) = server.endpoint().address else { exit(1) }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = RedisClient(
            endpoint: server.endpoint(),
            timeout: .seconds(5),
            group: group,
            logger: Logger(label: "xi-redis-bench")
        )
        let loop = group.next()
        // The key and 3-byte value redis-benchmark's GET reads.
        _ = try await client.send(["SET", "key:__rand_int__", "xxx"], on: loop).get()

        var rows: [(String, [Figures], [Figures])] = []
        for (name, window) in [("one at a time", 1), ("16 pipelined", 16)] {
            var ours: [Figures] = []
            var theirs: [Figures] = []
            for _ in 0..<rounds {
                ours.append(try await measure(client, on: loop, requests: requests, window: window))
                theirs.append(try runPeer(peer, socket: socket, requests: requests, pipeline: window))
            }
            rows.append((name, ours, theirs))
        }
        print("xi-redis-bench: GET of a 3-byte value over a Unix socket, \(requests) per run, median of \(rounds)")
        for (name, ours, theirs) in rows {
            let mine = median(ours)
            let peer = median(theirs)
            print(
                "\(name): RedisClient \(Int(mine.perSecond)) GET/s (p50 \(Int(mine.p50Microseconds)) µs, p99 "
                    + "\(Int(mine.p99Microseconds)) µs); redis-benchmark \(Int(peer.perSecond)) GET/s (p50 "
                    + "\(Int(peer.p50Microseconds)) µs, p99 \(Int(peer.p99Microseconds)) µs); ratio "
                    + String(format: "%.2f", mine.perSecond / peer.perSecond)
            )
        }
        await client.shutdown()
        await server.stop()
        try await group.shutdownGracefully()
    }

    /// `requests` GETs on `loop`'s connection, `window` of them in flight at a time, chained on the loop
    /// (no task hop between them), each timed from its send to its reply.
    static func measure(
        _ client: RedisClient,
        on loop: any EventLoop,
        requests: Int,
        window: Int
    ) async throws -> Figures {
        let done = loop.makePromise(of: (UInt64, [UInt64]).self)
        loop.execute {
            Run(client: client, loop: loop, requests: requests, done: done).start(window: window)
        }
        let (elapsed, latencies) = try await done.futureResult.get()
        let sorted = latencies.sorted()
        return Figures(
            perSecond: Double(requests) / (Double(elapsed) / 1e9),
            p50Microseconds: Double(sorted[sorted.count / 2]) / 1000,
            p99Microseconds: Double(sorted[min(sorted.count - 1, sorted.count * 99 / 100)]) / 1000
        )
    }

    /// One measurement, confined to its loop.
    final class Run {
        let client: RedisClient
        let loop: any EventLoop
        let requests: Int
        let done: EventLoopPromise<(UInt64, [UInt64])>
        var latencies: [UInt64] = []
        var sent = 0
        var answered = 0
        var started: UInt64 = 0

        init(client: RedisClient, loop: any EventLoop, requests: Int, done: EventLoopPromise<(UInt64, [UInt64])>) {
            self.client = client
            self.loop = loop
            self.requests = requests
            self.done = done
            latencies.reserveCapacity(requests)
        }

        func start(window: Int) {
            started = NIODeadline.now().uptimeNanoseconds
            for _ in 0..<min(window, requests) { send() }
        }

        func send() {
            sent += 1
            let at = NIODeadline.now().uptimeNanoseconds
            client.send(["GET", "key:__rand_int__"], on: loop).assumeIsolated().whenComplete { result in
                guard case .success = result else {
                    self.done.fail(RedisError.closed)
                    return
                }
                self.latencies.append(NIODeadline.now().uptimeNanoseconds - at)
                self.answered += 1
                if self.answered == self.requests {
                    self.done.succeed((NIODeadline.now().uptimeNanoseconds - self.started, self.latencies))
                } else if self.sent < self.requests {
                    self.send()
                }
            }
        }
    }

    /// `redis-benchmark` with one connection and `pipeline` commands in flight.
    static func runPeer(_ path: String, socket: String, requests: Int, pipeline: Int) throws -> Figures {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["-s", socket, "-c", "1", "-n", "\(requests)", "-t", "get", "-P", "\(pipeline)", "--csv"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // "GET","rps","avg","min","p50","p95","p99","max" (milliseconds)
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("\"GET\"") }) else {
            throw RedisError.protocolError("redis-benchmark printed: \(output)")
        }
        let fields = line.split(separator: ",").map { Double($0.trimmingCharacters(in: ["\""])) ?? 0 }
        return Figures(perSecond: fields[1], p50Microseconds: fields[4] * 1000, p99Microseconds: fields[6] * 1000)
    }

    static func median(_ figures: [Figures]) -> Figures {
        func middle(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        return Figures(
            perSecond: middle(figures.map(\.perSecond)),
            p50Microseconds: middle(figures.map(\.p50Microseconds)),
            p99Microseconds: middle(figures.map(\.p99Microseconds))
        )
    }
}
