import Foundation
import GatewayCore
import GatewayTesting
import NIOCore
import NIOHTTP1
import Testing

/// Several `xi-gateway` processes sharing one real `redis-server` (on a Unix socket in a temporary folder)
/// in front of one fake upstream, over real sockets: toward the upstream they behave like one gateway.
struct Replicas {
    let redis: RedisServer
    let upstream: FakeUpstream
    let gateways: [GatewayProcess]
    let ports: [Int]
    /// Each replica's admin listener (statistics without a token, purges with it).
    let adminPorts: [Int]
    let directory: URL

    static let apiKey = "sk_replicas_test_5c1f0d2a9b"
    static let adminToken = "admin-token-for-replicas-0123456789"

    /// Starts Redis, the upstream (answering with `script`) and `count` gateways with `settings` added to
    /// their environment. With `redisCertificate`, the gateways reach Redis by `rediss://` on its TLS port,
    /// trusting that certificate (`REDIS_TLS_CA_FILE`).
    static func start(
        count: Int = 3,
        settings: [String: String] = [:],
        redisCertificate: ListenerTLSSettings? = nil,
        upstreamScript: @escaping @Sendable (FakeUpstream.ReceivedRequest) -> FakeUpstream.Reply = {
            .page(for: $0.uri)
        }
    ) async throws -> Replicas {
        let redis = try await RedisServer.start(tls: redisCertificate)
        let upstream = try await FakeUpstream.start(script: upstreamScript)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "xi-replicas-\(UUID().uuidString)"
        )
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var environment = [
            "PATH": "/usr/bin:/bin",
            "ELEVENLABS_API_KEY": apiKey,
            "UPSTREAM_URL": upstream.baseURL,
            "LISTEN_PORT": "0",
            "ADMIN_LISTEN": "127.0.0.1:0",
            "REDIS_URL": redis.tlsPort.map { "rediss://127.0.0.1:\($0)" } ?? redis.endpoint().description,
            // A loaded test machine may keep Redis from answering within the default 100 ms.
            "REDIS_TIMEOUT_MS": "5000",
            "ADMIN_TOKEN": adminToken,
            "ACCESS_LOG": "off",
            "EVENT_LOOP_THREADS": "1",
        ]
        if let redisCertificate { environment["REDIS_TLS_CA_FILE"] = redisCertificate.certificateFile }
        environment.merge(settings) { $1 }
        var gateways: [GatewayProcess] = []
        var ports: [Int] = []
        var adminPorts: [Int] = []
        for _ in 0..<count {
            let gateway = try GatewayProcess(arguments: [], environment: environment, directory: directory)
            gateways.append(gateway)
        }
        for gateway in gateways {
            guard try await gateway.waitForOutput(containing: "listening") else {
                throw TestHTTPError(description: "a replica did not start: \(gateway.printed)")
            }
            let port = gateway.printedPort()
            ports.append(try #require(port, "no port in: \(gateway.printed)"))
            adminPorts.append(try #require(gateway.printedPort(admin: true), "no admin port in: \(gateway.printed)"))
        }
        let replicas = Replicas(
            redis: redis,
            upstream: upstream,
            gateways: gateways,
            ports: ports,
            adminPorts: adminPorts,
            directory: directory
        )
        // Each replica's subscription is in place before a test relies on its messages.
        let subscribed = await eventually {
            guard
                let reply = try? await replicas.redisCommand([
                    "PUBSUB", "NUMSUB", "xg:{\(Self.credentialTag)}:flights2",
                ])
            else { return false }
            return reply.contains(" \(count)") || reply.hasSuffix("\(count)")
        }
        if !subscribed { Issue.record("the replicas did not all subscribe") }
        return replicas
    }

    /// The tag the gateways put in their keys: a short digest of the upstream key.
    static var credentialTag: String { String(SHA256.hexDigest(apiKey.utf8).prefix(12)) }

    /// A command run with `redis-cli` on the test's server; its output.
    func redisCommand(_ arguments: [String]) async throws -> String {
        guard case .unix(let path) = redis.endpoint().address else { return "" }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        process.arguments = ["-s", path] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func get(_ replica: Int, _ query: String, headers: [(String, String)] = []) throws -> TestResponse {
        try TestHTTPConnection.request(
            port: ports[replica % ports.count],
            target: "/v1/convai/test-invocations?" + query,
            headers: headers
        )
    }

    /// Sends every request of `requests` (replica, query) on its own connection before reading any answer,
    /// so the gateways see them all at once; the answers, in order.
    func simultaneously(_ requests: [(replica: Int, query: String)]) throws -> [TestResponse] {
        let connections = try requests.map {
            try TestHTTPConnection(port: ports[$0.replica % ports.count], timeoutSeconds: 30)
        }
        for (connection, request) in zip(connections, requests) {
            try connection.send(
                "GET /v1/convai/test-invocations?\(request.query) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            )
        }
        return try connections.map { try $0.readResponse() }
    }

    /// The admin stats of one replica, as text (empty when it cannot be read): on its admin listener, where
    /// reading them needs no token.
    func stats(_ replica: Int) -> String {
        let answer = try? TestHTTPConnection.request(port: adminPorts[replica], target: "/admin/cache/stats")
        return answer?.text ?? ""
    }

    func stop() async throws {
        for gateway in gateways where gateway.process.isRunning {
            gateway.process.interrupt()
        }
        for gateway in gateways {
            _ = try await gateway.waitForExit()
        }
        try await upstream.shutdown()
        await redis.stop()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Polls `condition` every 20 ms until it holds or `limit` has passed; whether it held.
private func eventually(within limit: Duration = .seconds(20), _ condition: () async -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return await condition()
}

// One test at a time: each starts Redis and three gateways.
@Suite("Replicas over one Redis behave like one gateway", .serialized)
struct ReplicasTests {
    @Test func aHundredSimultaneousRequestsForOneColdKeyOnThreeReplicasMakeOneUpstreamRequest() async throws {
        // The upstream takes a while, so that the requests overlap its one request.
        let replicas = try await Replicas.start { .page(for: $0.uri, delay: .milliseconds(500)) }
        let answers = try replicas.simultaneously(
            (0..<100).map { (replica: $0 % 3, query: "page_size=7&agent_id=cold") }
        )
        #expect(answers.allSatisfy { $0.status == 200 }, "\(answers.map(\.status))")
        #expect(Set(answers.map(\.body)).count == 1, "every replica answers the same page")
        #expect(replicas.upstream.requestCount == 1)
        let statuses = answers.compactMap { $0.header("Cache-Status") }
        #expect(statuses.filter { $0.hasSuffix("stored") }.count <= 1, "one leader: \(Set(statuses))")
        #expect(statuses.contains { $0.contains("collapsed") || $0.contains("detail=shared") })
        try await replicas.stop()
    }

    @Test(arguments: [false, true])
    func aPageFetchedByOneReplicaIsASharedHitOnTheOthersWithTheSameAge(overTLS: Bool) async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let replicas = try await Replicas.start(redisCertificate: overTLS ? try certificates.pair("redis") : nil)
        if overTLS {
            #expect(replicas.gateways.allSatisfy { $0.printed.contains("rediss://127.0.0.1:") })
            #expect(replicas.stats(0).contains(#""shared_tier":"up""#))
        }
        let first = try replicas.get(0, "page_size=3")
        #expect(first.header("Cache-Status") == "xi-gateway; fwd=miss; fwd-status=200; stored")
        // The leader answers its client before its page is in Redis (storing it does not hold the answer
        // up): until then another replica would follow the flight instead of finding the page.
        #expect(
            await eventually {
                let keys = try? await replicas.redisCommand(["KEYS", "xg:{\(Replicas.credentialTag)}:page2:*"])
                return keys?.isEmpty == false
            }
        )
        let second = try replicas.get(1, "page_size=3")
        #expect(second.status == 200)
        #expect(
            second.header("Cache-Status")?.hasSuffix("detail=shared") == true,
            "\(second.header("Cache-Status") ?? "")"
        )
        #expect(second.body == first.body)
        let firstAge = Int(first.header("Age") ?? "") ?? -1
        let secondAge = Int(second.header("Age") ?? "") ?? -1
        #expect(firstAge >= 0 && secondAge >= firstAge && secondAge < 30, "the age since the upstream answered")
        let third = try replicas.get(1, "page_size=3")
        #expect(third.header("Cache-Status")?.hasPrefix("xi-gateway; hit; ttl=") == true)
        #expect(replicas.upstream.requestCount == 1)
        try await replicas.stop()
    }

    /// With a shared tier, a new key on SIGHUP waits for a restart (the tier's Redis names come from the
    /// key each replica started with): the reload says so, and upstream requests keep the key in force.
    @Test func aNewKeyOnAReloadWaitsForARestartWithASharedTier() async throws {
        let secrets = FileManager.default.temporaryDirectory.appendingPathComponent("xi-rekey-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: secrets, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: secrets) }
        let keyFile = secrets.appendingPathComponent("api-key")
        try (Replicas.apiKey + "\n").write(to: keyFile, atomically: true, encoding: .utf8)
        let replicas = try await Replicas.start(
            count: 1,
            settings: ["ELEVENLABS_API_KEY": "", "ELEVENLABS_API_KEY_FILE": keyFile.path]
        )
        _ = try replicas.get(0, "page_size=2")
        try "sk_replicas_next_key_77\n".write(to: keyFile, atomically: true, encoding: .utf8)
        let gateway = replicas.gateways[0]
        _ = kill(gateway.process.processIdentifier, SIGHUP)
        #expect(try await gateway.waitForOutput(containing: "configuration reloaded"))
        #expect(try await gateway.waitForOutput(containing: #""keys":"ELEVENLABS_API_KEY""#))
        #expect(!gateway.printed.contains("the upstream key changed"))
        _ = try replicas.get(0, "page_size=3")
        let keys = replicas.upstream.requests.flatMap { $0.headers["xi-api-key"] }
        #expect(keys == [Replicas.apiKey, Replicas.apiKey])
        #expect(!gateway.printed.contains("sk_replicas_next_key_77"))
        try await replicas.stop()
    }

    @Test func aPurgeOnOneReplicaReachesEveryReplicasPages() async throws {
        let replicas = try await Replicas.start()
        for replica in 0..<3 { _ = try replicas.get(replica, "agent_id=a1&page_size=4") }
        #expect(replicas.upstream.requestCount == 1)
        let purge = try TestHTTPConnection.request(
            port: replicas.adminPorts[0],
            method: "POST",
            target: "/admin/cache/purge?agent_id=a1",
            headers: [("Authorization", "Bearer \(Replicas.adminToken)")]
        )
        #expect(purge.status == 200)
        // The message reaches the others within moments; a request after it finds no page anywhere.
        #expect(
            await eventually {
                replicas.stats(2).contains("\"entries\":0")
            }
        )
        let after = try replicas.get(2, "agent_id=a1&page_size=4")
        #expect(after.header("Cache-Status")?.contains("fwd=miss") == true, "\(after.header("Cache-Status") ?? "")")
        #expect(replicas.upstream.requestCount == 2)

        // A forwarded write on one replica does the same.
        for replica in 0..<3 { _ = try replicas.get(replica, "agent_id=a1&page_size=4") }
        let write = try TestHTTPConnection.request(
            port: replicas.ports[1],
            method: "POST",
            target: "/v1/convai/agents/a1/run-tests"
        )
        #expect(write.status == 200)
        #expect(replicas.upstream.requestCount == 3)
        #expect(
            await eventually {
                replicas.stats(0).contains("\"entries\":0")
            }
        )
        let afterWrite = try replicas.get(0, "agent_id=a1&page_size=4")
        #expect(afterWrite.header("Cache-Status")?.contains("fwd=miss") == true)
        #expect(replicas.upstream.requestCount == 4)
        try await replicas.stop()
    }

    @Test func withACapOfTwoManyColdKeysOnThreeReplicasNeverPutMoreThanTwoOnTheUpstream() async throws {
        let replicas = try await Replicas.start(
            settings: ["UPSTREAM_MAX_CONCURRENCY": "2", "UPSTREAM_QUEUE_TIMEOUT_MS": "60000"],
            upstreamScript: { .page(for: $0.uri, delay: .milliseconds(100)) }
        )
        let answers = try replicas.simultaneously((0..<24).map { (replica: $0 % 3, query: "page_size=\($0 + 1)") })
        #expect(answers.allSatisfy { $0.status == 200 }, "\(answers.map(\.status))")
        #expect(replicas.upstream.requestCount == 24)
        #expect(replicas.upstream.maxConcurrentRequests <= 2, "\(replicas.upstream.maxConcurrentRequests) at once")
        try await replicas.stop()
    }

    @Test func a429WithRetryAfterOnOneReplicaStopsThemAll() async throws {
        let replicas = try await Replicas.start { request in
            guard request.uri.contains("agent_id=limited") else { return .page(for: request.uri) }
            return FakeUpstream.Reply(
                status: 429,
                headers: [("Content-Type", "application/json"), ("Retry-After", "120")],
                body: #"{"detail":{"status":"too_many_concurrent_requests","message":"slow down"}}"#
            )
        }
        let limited = try replicas.get(0, "agent_id=limited")
        #expect(limited.status == 429)
        #expect(limited.header("Cache-Status") == "xi-gateway; fwd=miss; fwd-status=429")
        for replica in 1..<3 {
            let other = try replicas.get(replica, "agent_id=other\(replica)")
            #expect(other.status == 429, "replica \(replica): \(other.status)")
            #expect(
                other.header("Cache-Status")?.contains("upstream-backoff") == true,
                "\(other.header("Cache-Status") ?? "")"
            )
            let retryAfter = Int(other.header("Retry-After") ?? "") ?? 0
            #expect((100...120).contains(retryAfter), "the same back-off: \(retryAfter) s left")
        }
        #expect(replicas.upstream.requestCount == 1, "no replica asked the upstream during the back-off")
        try await replicas.stop()
    }

    @Test func aTeamsBudgetHoldsAcrossReplicas() async throws {
        let token = "xgt_replicas_team_token_0123456789abcdef"
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xi-teams-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let teams = directory.appendingPathComponent("teams")
        try (TeamRegistry.line(team: "red", token: token) + " upstream_per_minute=3\n").write(
            to: teams,
            atomically: true,
            encoding: .utf8
        )
        let replicas = try await Replicas.start(settings: ["CLIENTS_FILE": teams.path])
        var statuses: [Int] = []
        for question in 0..<9 {
            statuses.append(
                try replicas.get(question, "page_size=\(question + 1)", headers: [("xi-api-key", token)]).status
            )
        }
        #expect(statuses.filter { $0 == 200 }.count == 3, "\(statuses)")
        #expect(statuses.filter { $0 == 429 }.count == 6, "\(statuses)")
        #expect(replicas.upstream.requestCount == 3)
        try await replicas.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    @Test func redisStoppedMidRunCostsNoClientErrorAndTheSharedModeComesBack() async throws {
        let replicas = try await Replicas.start(settings: ["REDIS_TIMEOUT_MS": "500"])
        #expect(try replicas.get(0, "page_size=11").status == 200)
        await replicas.redis.stop()
        for question in 0..<6 {
            let answer = try replicas.get(question, "page_size=\(20 + question)")
            #expect(answer.status == 200, "question \(question): \(answer.status) \(answer.text)")
        }
        #expect(replicas.stats(0).contains("\"shared_tier\":\"down\""))
        try await replicas.redis.restart()
        // Back within the retry interval (at most 5 s), seen by the next request that needs Redis.
        #expect(
            await eventually(within: .seconds(30)) {
                _ = try? replicas.get(0, "page_size=\(Int.random(in: 40...90))")
                return replicas.stats(0).contains("\"shared_tier\":\"up\"")
            }
        )
        try await replicas.stop()
        // Logged once each way (the log is complete once the process has exited).
        let log = replicas.gateways[0].printed
        // (Once per change of state: SharedTierHealthTests. Here a loaded machine may see Redis slow again.)
        #expect(log.contains("shared tier is down"), "\(log)")
        #expect(log.contains("shared tier is up again"), "\(log)")
        #expect(!log.contains(Replicas.apiKey))
    }
}
