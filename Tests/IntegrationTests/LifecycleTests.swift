import Foundation
import GatewayCore
import GatewayCurl
import GatewayServer
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

@Suite("Shutdown and reload")
struct LifecycleTests {
    private let list = "/v1/convai/test-invocations"

    /// The `ttl=` of a hit's `Cache-Status`.
    private static func ttl(_ response: TestResponse) -> Int? {
        guard let status = response.header("Cache-Status"), status.contains("; hit; ttl=") else { return nil }
        return status.split(separator: "ttl=").last.flatMap { Int($0.prefix { $0.isNumber || $0 == "-" }) }
    }

    @Test func aRequestInFlightAtShutdownCompletesAndIdleConnectionsClose() async throws {
        let gateway = try await GatewayHarness.start { .page(for: $0.uri, delay: .milliseconds(500)) }
        let port = gateway.port
        let idle = try TestHTTPConnection(port: port)
        try idle.send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try idle.readResponse().status == 200)

        let inFlight = Task.detached {
            try TestHTTPConnection.request(port: port, target: "\(self.list)?agent_id=slow")
        }
        try await Task.sleep(for: .milliseconds(150))
        let started = ContinuousClock.now
        await gateway.server.shutdown(grace: .seconds(5))

        let answer = try await inFlight.value
        #expect(answer.status == 200)
        #expect(ContinuousClock.now - started < .seconds(4))
        #expect(idle.waitForClose())
        #expect(throws: (any Error).self) { try TestHTTPConnection(port: port) }
        #expect(gateway.server.connectionCount == 0)
        gateway.client.shutdown()
        try await gateway.upstream.shutdown()
    }

    @Test func theGracePeriodBoundsTheWait() async throws {
        let gateway = try await GatewayHarness.start(timeoutMilliseconds: 20_000) {
            .page(for: $0.uri, delay: .seconds(10))
        }
        let port = gateway.port
        let stuck = Task.detached { try? TestHTTPConnection.request(port: port, target: "\(self.list)?agent_id=stuck") }
        // In flight (at the upstream) before the shutdown begins, however slowly a busy machine gets there.
        let deadline = ContinuousClock.now + .seconds(20)
        while gateway.upstream.requestCount == 0, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(gateway.upstream.requestCount == 1)

        let started = ContinuousClock.now
        await gateway.server.shutdown(grace: .milliseconds(300))

        // Far less than the upstream's 10 s: the grace bounded the wait (a loaded machine may add seconds).
        #expect(ContinuousClock.now - started < .seconds(8))
        #expect(await stuck.value == nil)
        gateway.client.shutdown()
        try await gateway.upstream.shutdown()
    }

    /// Teams never give way to an open gateway on a reload: removing `CLIENTS_FILE` keeps the teams in force
    /// and says a restart is needed; a new teams file is applied only when it is valid, and the change is
    /// logged at notice level with the number of teams before and after.
    @Test func aReloadNeverOpensTheGatewayAndAppliesANewTeamsFileOnlyWhenValid() async throws {
        let upstream = try await FakeUpstream.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xi-teams-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("proxy.conf")
        let oneTeam = directory.appendingPathComponent("one.teams")
        let twoTeams = directory.appendingPathComponent("two.teams")
        let broken = directory.appendingPathComponent("broken.teams")
        let (alpha, beta) = ("tok_alpha_0123456789", "tok_beta_0123456789")
        try "alpha \(SHA256.hexDigest(alpha.utf8))\n".write(to: oneTeam, atomically: true, encoding: .utf8)
        try "alpha \(SHA256.hexDigest(alpha.utf8))\nbeta \(SHA256.hexDigest(beta.utf8))\n"
            .write(to: twoTeams, atomically: true, encoding: .utf8)
        try "alpha not-a-digest\n".write(to: broken, atomically: true, encoding: .utf8)
        func write(clients: URL?) throws {
            try
                ("ELEVENLABS_API_KEY=sk_teams_test_key\nUPSTREAM_URL=\(upstream.baseURL)\nLISTEN_PORT=0\n"
                + (clients.map { "CLIENTS_FILE=\($0.path)\n" } ?? ""))
                .write(to: file, atomically: true, encoding: .utf8)
        }
        try write(clients: oneTeam)
        let gateway = try GatewayProcess(
            arguments: ["--config", file.path],
            environment: ["ADMIN_LISTEN": "127.0.0.1:0"],
            directory: directory
        )
        // Stopped even when an expectation fails part-way (the end of the test stops it cleanly otherwise).
        defer { if gateway.process.isRunning { gateway.process.terminate() } }
        #expect(try await gateway.waitForOutput(containing: "listening"))
        let port = try #require(
            gateway.printedPort(),
            "no port in \(gateway.printed)"
        )
        func status(token: String?) throws -> Int {
            try TestHTTPConnection.request(
                port: port,
                target: "\(list)?page_size=2",
                headers: token.map { [("xi-api-key", $0)] } ?? []
            ).status
        }
        #expect(try status(token: nil) == 401)

        try write(clients: nil)
        _ = kill(gateway.process.processIdentifier, SIGHUP)
        #expect(try await gateway.waitForOutput(containing: "CLIENTS_FILE was removed"))
        #expect(try await gateway.waitForOutput(containing: #""keys":"CLIENTS_FILE""#))
        #expect(try status(token: nil) == 401)
        #expect(try status(token: alpha) == 200)

        try write(clients: broken)
        _ = kill(gateway.process.processIdentifier, SIGHUP)
        #expect(try await gateway.waitForOutput(containing: "reload failed"))
        #expect(try status(token: alpha) == 200)

        try write(clients: twoTeams)
        _ = kill(gateway.process.processIdentifier, SIGHUP)
        #expect(try await gateway.waitForOutput(containing: "teams file changed"))
        let notice = gateway.printed.split(separator: "\n").first { $0.contains("teams file changed") } ?? ""
        #expect(notice.contains(#""level":"notice""#))
        #expect(notice.contains(#""teams_before":"1""#) && notice.contains(#""teams":"2""#))
        #expect(try status(token: beta) == 200)
        #expect(try status(token: nil) == 401)

        gateway.process.terminate()
        #expect(try await gateway.waitForExit() == 0)
        #expect(!gateway.printed.contains("sk_teams_test_key") && !gateway.printed.contains(alpha))
        try await upstream.shutdown()
    }

    /// SIGHUP applies a changed key (here from its file): new upstream requests carry it at once, one
    /// under way finishes with the old, and a page fetched with the old key is not served for the new.
    @Test func aReloadAppliesANewKeyToNewRequestsAndLetsThoseUnderWayFinish() async throws {
        let upstream = try await FakeUpstream.start { request in
            .page(for: request.uri, delay: request.uri.contains("slow") ? .milliseconds(1500) : .zero)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xi-rekey-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let keyFile = directory.appendingPathComponent("api-key")
        try "sk_first_key_4b1d\n".write(to: keyFile, atomically: true, encoding: .utf8)
        let file = directory.appendingPathComponent("proxy.conf")
        try "ELEVENLABS_API_KEY_FILE=\(keyFile.path)\nUPSTREAM_URL=\(upstream.baseURL)\nLISTEN_PORT=0\n"
            .write(to: file, atomically: true, encoding: .utf8)
        let gateway = try GatewayProcess(
            arguments: ["--config", file.path],
            environment: ["PATH": "/usr/bin:/bin", "ADMIN_LISTEN": "127.0.0.1:0"],
            directory: directory
        )
        defer { if gateway.process.isRunning { gateway.process.terminate() } }
        #expect(try await gateway.waitForOutput(containing: "listening"))
        let port = try #require(gateway.printedPort(), "no port in \(gateway.printed)")
        func keys(of query: String) -> [String] {
            upstream.requests.filter { $0.uri.hasSuffix("?" + query) }.flatMap { $0.headers["xi-api-key"] }
        }
        #expect(try TestHTTPConnection.request(port: port, target: "\(list)?page_size=3").status == 200)
        #expect(keys(of: "page_size=3") == ["sk_first_key_4b1d"])

        let slow = Task.detached { try TestHTTPConnection.request(port: port, target: "\(self.list)?agent_id=slow") }
        // The slow request is under way upstream (with the first key) before the key changes.
        for _ in 0..<200 where keys(of: "agent_id=slow&page_size=30").isEmpty {
            try await Task.sleep(for: .milliseconds(10))
        }
        try "sk_second_key_9c2e\n".write(to: keyFile, atomically: true, encoding: .utf8)
        _ = kill(gateway.process.processIdentifier, SIGHUP)
        #expect(try await gateway.waitForOutput(containing: "the upstream key changed"))
        #expect(!gateway.printed.contains("take effect only after a restart"))

        #expect(try await slow.value.status == 200, "the request under way finished")
        #expect(keys(of: "agent_id=slow&page_size=30") == ["sk_first_key_4b1d"])
        let after = try TestHTTPConnection.request(port: port, target: "\(list)?page_size=3")
        #expect(after.header("Cache-Status")?.contains("fwd=miss") == true, "the old key's page is not the new key's")
        #expect(keys(of: "page_size=3") == ["sk_first_key_4b1d", "sk_second_key_9c2e"])

        gateway.process.interrupt()
        #expect(try await gateway.waitForExit() == 0)
        #expect(!gateway.printed.contains("sk_first_key_4b1d") && !gateway.printed.contains("sk_second_key_9c2e"))
        try await upstream.shutdown()
    }

    @Test func theBinaryReloadsOnSIGHUPKeepsTheOldOnABadFileAndFinishesRequestsOnSIGTERM() async throws {
        let upstream = try await FakeUpstream.start { request in
            .page(for: request.uri, delay: request.uri.contains("slow") ? .milliseconds(700) : .zero)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xi-reload-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("proxy.conf")
        func write(_ ttl: String, extra: String = "") throws {
            try
                "ELEVENLABS_API_KEY=sk_reload_test_key\nUPSTREAM_URL=\(upstream.baseURL)\nLISTEN_PORT=0\nCACHE_TTL_SECONDS=\(ttl)\n\(extra)"
                .write(to: file, atomically: true, encoding: .utf8)
        }
        try write("600", extra: "EVENT_LOOP_THREADS=3\n")
        let gateway = try GatewayProcess(
            arguments: ["--config", file.path],
            environment: ["PATH": "/usr/bin:/bin", "ADMIN_LISTEN": "127.0.0.1:0"],
            directory: directory
        )
        #expect(try await gateway.waitForOutput(containing: "listening"))
        let port = try #require(
            gateway.printedPort(),
            "no port in \(gateway.printed)"
        )
        #expect(gateway.printed.contains(#""event_loop_threads":"3""#))
        _ = try TestHTTPConnection.request(port: port, target: "\(list)?page_size=3")
        let before = try TestHTTPConnection.request(port: port, target: "\(list)?page_size=3")
        #expect(Self.ttl(before).map { $0 > 500 } == true, "\(before.header("Cache-Status") ?? "")")

        // The thread count cannot change while serving: the reload says so and applies the rest.
        try write("20", extra: "EVENT_LOOP_THREADS=1\n")
        _ = kill(gateway.process.processIdentifier, SIGHUP)
        #expect(try await gateway.waitForOutput(containing: "configuration reloaded"))
        #expect(try await gateway.waitForOutput(containing: #""keys":"EVENT_LOOP_THREADS""#))
        let after = try TestHTTPConnection.request(port: port, target: "\(list)?page_size=3")
        // The page keeps its age; what is left of its freshness now counts from 20 s, not 600.
        #expect(Self.ttl(after).map { $0 <= 20 } == true, "\(after.header("Cache-Status") ?? "")")

        try write("abc")
        _ = kill(gateway.process.processIdentifier, SIGHUP)
        #expect(try await gateway.waitForOutput(containing: "reload failed"))
        let kept = try TestHTTPConnection.request(port: port, target: "\(list)?page_size=3")
        #expect(Self.ttl(kept).map { $0 <= 20 } == true, "\(kept.header("Cache-Status") ?? "")")

        let slow = Task.detached { try TestHTTPConnection.request(port: port, target: "\(self.list)?agent_id=slow") }
        try await Task.sleep(for: .milliseconds(200))
        gateway.process.terminate()
        #expect(try await slow.value.status == 200)
        #expect(try await gateway.waitForExit() == 0)
        #expect(gateway.printed.contains("stopping: requests in flight may finish"))
        #expect(!gateway.printed.contains("sk_reload_test_key"))
        try await upstream.shutdown()
    }
}
