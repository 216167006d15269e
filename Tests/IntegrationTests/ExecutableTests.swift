import Foundation
import GatewayCore
import GatewayTesting
import NIOHTTP1
import Synchronization
import Testing

/// The built `xi-gateway` binary, started as a user would start it.
final class GatewayProcess: Sendable {
    let process = Process()
    private let output = Locked("")
    private let standardOutput = Locked("")
    private let standardError = Locked("")

    /// A binary beside the test bundle (`swift build --build-tests` builds them all).
    static func executable(_ name: String) -> URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(name)
    }

    init(
        _ name: String = "xi-gateway",
        arguments: [String],
        environment: [String: String],
        directory: URL,
        standardInput: String? = nil
    ) throws {
        process.executableURL = Self.executable(name)
        process.arguments = arguments
        // A binary built with a sanitizer runs with the test run's options (`make sanitize` turns leak
        // detection off, as libraries leak at exit): a child given none would fail its exit status on them.
        var environment = environment
        for name in ["ASAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS"] where environment[name] == nil {
            environment[name] = ProcessInfo.processInfo.environment[name]
        }
        process.environment = environment
        process.currentDirectoryURL = directory
        let outputPipe = Pipe()
        let errorPipe = Pipe()
        let inputPipe = Pipe()
        process.standardOutput = outputPipe
        process.standardError = errorPipe
        process.standardInput = standardInput == nil ? FileHandle.nullDevice : inputPipe
        if let standardInput {
            // Written and closed before the start, so a child that exits without reading cannot SIGPIPE us
            // (the input is far smaller than a pipe's buffer).
            try inputPipe.fileHandleForWriting.write(contentsOf: Data(standardInput.utf8))
            try inputPipe.fileHandleForWriting.close()
        }
        try process.run()
        // A thread of its own reads each stream until the process closes it, with blocking reads. Not a
        // `readabilityHandler`: its dispatch source, torn down with the pipe, can crash libdispatch's event
        // loop on Linux (swift-corelibs-foundation#3276; it crashed this test bundle once, in
        // `_dispatch_event_loop_drain`).
        for (pipe, stream) in [(outputPipe, standardOutput), (errorPipe, standardError)] {
            let reader = pipe.fileHandleForReading
            let output = output
            Thread.detachNewThread {
                while case let data = reader.availableData, !data.isEmpty {
                    let text = String(decoding: data, as: UTF8.self)
                    output.withLock { $0 += text }
                    stream.withLock { $0 += text }
                }
            }
        }
    }

    /// Everything printed so far, stdout and stderr together.
    var printed: String { output.withLock { $0 } }

    /// The port the start line names: the API listener's, or with `admin`, the admin listener's.
    func printedPort(admin: Bool = false) -> Int? {
        let found =
            admin
            ? printed.firstMatch(of: /"admin_listen":"https?:\/\/127\.0\.0\.1:(\d+)"/)
            : printed.firstMatch(of: /"listen":"https?:\/\/127\.0\.0\.1:(\d+)"/)
        return found.flatMap { Int($0.1) }
    }

    /// What was printed on stdout so far.
    var printedOnStandardOutput: String { standardOutput.withLock { $0 } }

    /// What was printed on stderr so far.
    var printedOnStandardError: String { standardError.withLock { $0 } }

    /// Waits until the output contains `text`, up to `seconds`.
    func waitForOutput(containing text: String, seconds: Double = 20) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            if printed.contains(text) { return true }
            if !process.isRunning { return printed.contains(text) }
            try await Task.sleep(for: .milliseconds(20))
        }
        // Once more: a loaded machine may have kept this task from running until past the deadline.
        return printed.contains(text)
    }

    /// Waits for the process to exit, up to `seconds`, killing it past that; returns its status.
    func waitForExit(seconds: Double = 20) async throws -> Int32 {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            Issue.record("xi-gateway did not exit in time; output:\n\(printed)")
        }
        // Let the reader drain what was written just before exit.
        try await Task.sleep(for: .milliseconds(50))
        return process.terminationStatus
    }
}

@Suite("The xi-gateway executable")
struct ExecutableTests {
    private func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("xi-gateway-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Every gateway here gets an admin listener on a free port: several run at once.
    private let baseEnvironment = ["PATH": "/usr/bin:/bin", "ADMIN_LISTEN": "127.0.0.1:0"]

    @Test func theFakeUpstreamOnATakenPortSaysSoInOneLineAndExits1() async throws {
        let taken = try await FakeUpstream.start { _ in .init(body: "{}") }
        let fake = try GatewayProcess(
            "xi-fake-upstream",
            arguments: ["--port", String(taken.port)],
            environment: baseEnvironment,
            directory: try temporaryDirectory()
        )
        #expect(try await fake.waitForExit() == 1)
        #expect(fake.printed.hasPrefix("xi-fake-upstream: cannot listen on 127.0.0.1:\(taken.port)"))
        #expect(!fake.printed.contains("Fatal error"))
        try await taken.shutdown()
    }

    /// The benchmark stops its fake with SIGTERM (and Ctrl-C stops it by hand): it must exit cleanly, with a
    /// connection still open, not crash on the signal.
    @Test(arguments: [SIGTERM, SIGINT])
    func theFakeUpstreamStopsCleanlyOnASignal(_ signal: Int32) async throws {
        let fake = try GatewayProcess(
            "xi-fake-upstream",
            arguments: ["--port", "0", "--latency-ms", "0"],
            environment: baseEnvironment,
            directory: try temporaryDirectory()
        )
        #expect(try await fake.waitForOutput(containing: "listening"))
        let printedPort = fake.printed.firstMatch(of: /127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) }
        let port = try #require(printedPort, "no port in: \(fake.printed)")
        let connection = try TestHTTPConnection(port: port)
        try connection.send("GET /v1/convai/test-invocations?page_size=2 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try connection.readResponse().status == 200)

        kill(fake.process.processIdentifier, signal)
        #expect(try await fake.waitForExit() == 0)
        #expect(fake.process.terminationReason == .exit)
        #expect(!fake.printed.contains("crashed"))
    }

    @Test func printsItsVersion() async throws {
        let gateway = try GatewayProcess(
            arguments: ["--version"],
            environment: baseEnvironment,
            directory: try temporaryDirectory()
        )
        #expect(try await gateway.waitForExit() == 0)
        #expect(gateway.printed.hasPrefix("xi-gateway "))
    }

    /// `hash-token` alone prints the digest a `CLIENTS_FILE` line holds, for a team that is already listed.
    @Test(arguments: ["abc", "abc\n", "  abc\r\n"])
    func hashTokenWithoutATeamPrintsTheTokensSHA256Alone(_ input: String) async throws {
        let gateway = try GatewayProcess(
            arguments: ["hash-token"],
            environment: baseEnvironment,
            directory: try temporaryDirectory(),
            standardInput: input
        )
        #expect(try await gateway.waitForExit() == 0)
        #expect(
            gateway.printedOnStandardOutput == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\n"
        )
        #expect(gateway.printedOnStandardError.isEmpty)
    }

    @Test func hashTokenWithATeamPrintsTheClientsFileLine() async throws {
        let gateway = try GatewayProcess(
            arguments: ["hash-token", "checkout-team"],
            environment: baseEnvironment,
            directory: try temporaryDirectory(),
            standardInput: "xgt_example\n"
        )
        #expect(try await gateway.waitForExit() == 0)
        #expect(
            gateway.printedOnStandardOutput
                == "checkout-team 02fbd239ad5c125b565574e0c9be631b4fb1ee06c15a75df6b512ac38efebd47\n"
        )
    }

    @Test func hashTokenWithNothingOnStandardInputIsAnError() async throws {
        let gateway = try GatewayProcess(
            arguments: ["hash-token"],
            environment: baseEnvironment,
            directory: try temporaryDirectory(),
            standardInput: ""
        )
        #expect(try await gateway.waitForExit() == 64)
        #expect(gateway.printedOnStandardOutput.isEmpty)
        #expect(gateway.printedOnStandardError.contains("reads the token on standard input"))
    }

    /// Every subcommand answers `--help` with its own usage, exit 0, and does nothing else: no token is
    /// minted, no standard input read, no configuration loaded.
    @Test(arguments: [
        ["--help"], ["run", "--help"], ["check-config", "--help"], ["new-token", "--help"], ["new-token", "-h"],
        ["hash-token", "--help"], ["help", "new-token"],
    ])
    func everySubcommandHasItsOwnHelp(_ arguments: [String]) async throws {
        let gateway = try GatewayProcess(
            arguments: arguments,
            environment: ["ELEVENLABS_API_KEY": "", "CACHE_TTL_SECONDS": "-1"],
            directory: try temporaryDirectory(),
            standardInput: "xgt_example\n"
        )
        #expect(try await gateway.waitForExit() == 0)
        let command = arguments.first { !$0.hasPrefix("-") && $0 != "help" }
        #expect(gateway.printedOnStandardOutput.contains("USAGE: xi-gateway \(command.map { $0 + " " } ?? "")"))
        #expect(!gateway.printed.contains("xgt_"))
        #expect(!gateway.printed.contains("configuration error"))
    }

    /// An option, or anything beginning with `-`, where the team name goes is refused with exit status 64
    /// and the reason, and no token is minted for a team called `--help`.
    @Test(arguments: [
        (["new-token", "-x"], "Missing expected argument '<team>'"),
        (["new-token", "--", "--help"], "'--help' is not a team name (a team name does not begin with -)"),
        (["new-token", "-"], "'-' is not a team name"),
        (["new-token", "a b"], "a team name is 1 to 64 of A-Z a-z 0-9 . _ -, got 'a b'"),
        (["hash-token", "--", "-x"], "'-x' is not a team name"),
        (["hash-token", "-x"], "Unknown option '-x'"),
        (["new-token", "checkout-team", "extra"], "Unexpected argument 'extra'"),
        (["frobnicate"], "Unexpected argument 'frobnicate'"),
    ])
    func aBadCommandLineIsRefusedWithTheReason(_ arguments: [String], reason: String) async throws {
        let gateway = try GatewayProcess(
            arguments: arguments,
            environment: baseEnvironment,
            directory: try temporaryDirectory(),
            standardInput: "xgt_example\n"
        )
        #expect(try await gateway.waitForExit() == 64)
        #expect(gateway.printedOnStandardOutput.isEmpty)
        #expect(gateway.printedOnStandardError.contains(reason), "\(gateway.printedOnStandardError)")
        #expect(!gateway.printed.contains("xgt_"))
    }

    @Test func newTokenMintsATokenAndItsLine() async throws {
        let gateway = try GatewayProcess(
            arguments: ["new-token", "checkout-team"],
            environment: baseEnvironment,
            directory: try temporaryDirectory()
        )
        #expect(try await gateway.waitForExit() == 0)
        let printedToken = gateway.printedOnStandardOutput.firstMatch(of: /(xgt_[0-9a-f]{64})\n/).map { String($0.1) }
        let token = try #require(printedToken, "no token in: \(gateway.printed)")
        #expect(
            gateway.printedOnStandardOutput.hasSuffix("\n\(TeamRegistry.line(team: "checkout-team", token: token))\n")
        )
    }

    @Test func newTokenWithAnExpiryWritesItOnTheLine() async throws {
        let gateway = try GatewayProcess(
            arguments: ["new-token", "checkout-team", "--expires", "2027-03-01T00:00:00Z"],
            environment: baseEnvironment,
            directory: try temporaryDirectory()
        )
        #expect(try await gateway.waitForExit() == 0)
        let printedToken = gateway.printedOnStandardOutput.firstMatch(of: /(xgt_[0-9a-f]{64})\n/).map { String($0.1) }
        let token = try #require(printedToken, "no token in: \(gateway.printed)")
        let line = TeamRegistry.line(team: "checkout-team", token: token) + "  expires=2027-03-01T00:00:00Z"
        #expect(gateway.printedOnStandardOutput.hasSuffix("\n\(line)\n"))
        let registry = try TeamRegistry(parsing: line, source: "printed")
        #expect(registry.team(forToken: token, now: 1_803_859_199)?.name == "checkout-team")
        #expect(registry.team(forToken: token, now: 1_803_859_200) == nil)

        let bad = try GatewayProcess(
            arguments: ["new-token", "checkout-team", "--expires", "next week"],
            environment: baseEnvironment,
            directory: try temporaryDirectory()
        )
        #expect(try await bad.waitForExit() == 64)
        #expect(
            bad.printedOnStandardError.contains("--expires wants a UTC time as YYYY-MM-DDTHH:MM:SSZ, got 'next week'")
        )
        #expect(!bad.printed.contains("xgt_"))
    }

    @Test func checkConfigPrintsEverySettingInForceWithSecretsRedactedAndOpensNoSocket() async throws {
        let directory = try temporaryDirectory()
        let teams = directory.appendingPathComponent("teams")
        try (TeamRegistry.line(team: "red", token: "t1") + "\n" + TeamRegistry.line(team: "blue", token: "t2") + "\n")
            .write(to: teams, atomically: true, encoding: .utf8)
        let configFile = directory.appendingPathComponent("gateway.conf")
        try "ELEVENLABS_API_KEY=sk_check_config_secret_9\nCACHE_TTL_SECONDS=45\nCLIENTS_FILE=\(teams.path)\n"
            .write(to: configFile, atomically: true, encoding: .utf8)
        // A port that is taken: check-config does not try to listen.
        let taken = try await FakeUpstream.start { _ in .init(body: "{}") }
        let gateway = try GatewayProcess(
            arguments: ["check-config", "--config", configFile.path],
            environment: baseEnvironment.merging([
                "LISTEN_PORT": "\(taken.port)", "REDIS_URL": "redis://:redis-pass-3@127.0.0.1:1/0",
            ]) { $1 },
            directory: directory
        )
        #expect(try await gateway.waitForExit() == 0)
        let lines = gateway.printedOnStandardOutput.split(separator: "\n").map(String.init)
        #expect(lines.last == "configuration ok")
        #expect(lines.contains("CACHE_TTL_SECONDS=45"))
        #expect(lines.contains("LISTEN_PORT=\(taken.port)"))
        #expect(lines.contains("ELEVENLABS_API_KEY=<redacted>"))
        #expect(lines.contains("CLIENTS_FILE=\(teams.path) (2 teams)"))
        #expect(lines.contains("REDIS_URL=redis://***@127.0.0.1:1/0"))
        // Every key but those that name a file holding a secret (the secret is listed instead); the files of
        // the teams and of TLS are paths, shown as they are.
        let shownFiles: Set = ["CLIENTS_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE", "REDIS_TLS_CA_FILE"]
        #expect(
            lines.count == GatewayConfiguration.keys.filter {
                !$0.name.hasSuffix("_FILE") || shownFiles.contains($0.name)
            }
            .count + 1
        )
        #expect(!gateway.printed.contains("sk_check_config_secret_9") && !gateway.printed.contains("redis-pass-3"))
        #expect(taken.requestCount == 0)
        try await taken.shutdown()

        let bad = try GatewayProcess(
            arguments: ["check-config"],
            environment: baseEnvironment.merging(["ELEVENLABS_API_KEY": "k", "CACHE_TTL_SECONDS": "-5"]) { $1 },
            directory: directory
        )
        #expect(try await bad.waitForExit() == 78)
        #expect(bad.printedOnStandardError.contains("CACHE_TTL_SECONDS must be an integer of seconds, 0 or more"))
        #expect(!bad.printedOnStandardOutput.contains("configuration ok"))
    }

    @Test func refusesToStartWithoutAKeyAndSaysWhichKeyToSet() async throws {
        let gateway = try GatewayProcess(
            arguments: [],
            environment: baseEnvironment,
            directory: try temporaryDirectory()
        )

        #expect(try await gateway.waitForExit() == 78)
        #expect(gateway.printed.contains("ELEVENLABS_API_KEY is not set"))
        #expect(gateway.printed.contains("proxy.conf"))
    }

    @Test func secretsAreReadFromTheFilesTheirFileKeysName() async throws {
        let upstream = try await FakeUpstream.start()
        let directory = try temporaryDirectory()
        let keyFile = directory.appendingPathComponent("api-key")
        let tokenFile = directory.appendingPathComponent("admin-token")
        try "sk_from_a_mounted_secret_41\n".write(to: keyFile, atomically: true, encoding: .utf8)
        try "admin-token-from-a-file-0123\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        let gateway = try GatewayProcess(
            arguments: [],
            environment: baseEnvironment.merging([
                "ELEVENLABS_API_KEY_FILE": keyFile.path, "ADMIN_TOKEN_FILE": tokenFile.path,
                "UPSTREAM_URL": upstream.baseURL, "LISTEN_PORT": "0",
            ]) { $1 },
            directory: directory
        )
        #expect(try await gateway.waitForOutput(containing: "listening"))
        let printedPort = gateway.printedPort()
        let port = try #require(printedPort, "no port in: \(gateway.printed)")
        let adminPort = try #require(gateway.printedPort(admin: true), "no admin port in: \(gateway.printed)")
        #expect(try TestHTTPConnection.request(port: port, target: "/v1/convai/test-invocations").status == 200)
        #expect(upstream.requests.first?.headers["xi-api-key"] == ["sk_from_a_mounted_secret_41"], "no newline")
        let stats = try TestHTTPConnection.request(
            port: adminPort,
            method: "POST",
            target: "/admin/cache/purge",
            headers: [("Authorization", "Bearer admin-token-from-a-file-0123")]
        )
        #expect(stats.status == 200)
        gateway.process.interrupt()
        #expect(try await gateway.waitForExit() == 0)
        #expect(!gateway.printed.contains("sk_from_a_mounted_secret_41"))
        #expect(!gateway.printed.contains("admin-token-from-a-file"))
        try await upstream.shutdown()
    }

    /// The admin listener serves the metrics, the statistics (without a token) and purges (with it); the API
    /// listener then serves neither, and the admin listener serves no API route.
    @Test func theAdminListenerServesOperationsAndTheAPIListenerDoesNot() async throws {
        let upstream = try await FakeUpstream.start()
        let token = "admin-token-for-the-listener-test"
        let gateway = try GatewayProcess(
            arguments: [],
            environment: baseEnvironment.merging([
                "ELEVENLABS_API_KEY": "sk_admin_listener_5", "UPSTREAM_URL": upstream.baseURL, "LISTEN_PORT": "0",
                "ADMIN_TOKEN": token,
            ]) { $1 },
            directory: try temporaryDirectory()
        )
        defer { if gateway.process.isRunning { gateway.process.terminate() } }
        #expect(try await gateway.waitForOutput(containing: "listening"))
        let port = try #require(gateway.printedPort(), "no port in: \(gateway.printed)")
        let adminPort = try #require(gateway.printedPort(admin: true), "no admin port in: \(gateway.printed)")
        #expect(port != adminPort)
        let bearer = [("Authorization", "Bearer \(token)")]
        #expect(try TestHTTPConnection.request(port: port, target: "/v1/convai/test-invocations").status == 200)

        for (method, target) in [("GET", "/metrics"), ("GET", "/admin/cache/stats"), ("POST", "/admin/cache/purge")] {
            let answer = try TestHTTPConnection.request(port: port, method: method, target: target, headers: bearer)
            #expect(answer.status == 404, "\(method) \(target) on the API listener")
        }
        for listener in [port, adminPort] {
            #expect(try TestHTTPConnection.request(port: listener, target: "/healthz").status == 200)
            #expect(try TestHTTPConnection.request(port: listener, target: "/readyz").status == 200)
        }

        let metrics = try TestHTTPConnection.request(port: adminPort, target: "/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.text.contains(#"xi_gateway_requests_total{route="list",status="2xx",cache="miss"} 1"#))
        let stats = try TestHTTPConnection.request(port: adminPort, target: "/admin/cache/stats")
        #expect(stats.status == 200)
        #expect(stats.text.contains(#""entries":1"#))
        let unauthorized = try TestHTTPConnection.request(port: adminPort, method: "POST", target: "/admin/cache/purge")
        #expect(unauthorized.status == 401)
        let purge = try TestHTTPConnection.request(
            port: adminPort,
            method: "POST",
            target: "/admin/cache/purge",
            headers: bearer
        )
        #expect(purge.status == 200)
        #expect(purge.text == #"{"purged":1}"#)

        let list = try TestHTTPConnection.request(port: adminPort, target: "/v1/convai/test-invocations")
        #expect(list.status == 404)
        #expect(upstream.requestCount == 1)
        gateway.process.interrupt()
        #expect(try await gateway.waitForExit() == 0)
        #expect(!gateway.printed.contains(token))
        try await upstream.shutdown()
    }

    /// `ADMIN_LISTEN=off`: one port, as a single-port deployment; the metrics are on it, and the whole admin
    /// API, statistics too, wants the token.
    @Test func withoutAnAdminListenerTheAPIListenerServesEverythingBehindTheToken() async throws {
        let upstream = try await FakeUpstream.start()
        let token = "admin-token-for-one-port-deploys"
        let gateway = try GatewayProcess(
            arguments: [],
            environment: baseEnvironment.merging([
                "ELEVENLABS_API_KEY": "sk_one_port_6", "UPSTREAM_URL": upstream.baseURL, "LISTEN_PORT": "0",
                "ADMIN_TOKEN": token, "ADMIN_LISTEN": "off",
            ]) { $1 },
            directory: try temporaryDirectory()
        )
        defer { if gateway.process.isRunning { gateway.process.terminate() } }
        #expect(try await gateway.waitForOutput(containing: "listening"))
        #expect(gateway.printed.contains(#""admin_listen":"off""#))
        let port = try #require(gateway.printedPort(), "no port in: \(gateway.printed)")
        #expect(try TestHTTPConnection.request(port: port, target: "/metrics").status == 200)
        #expect(try TestHTTPConnection.request(port: port, target: "/admin/cache/stats").status == 401)
        let stats = try TestHTTPConnection.request(
            port: port,
            target: "/admin/cache/stats",
            headers: [("Authorization", "Bearer \(token)")]
        )
        #expect(stats.status == 200)
        gateway.process.interrupt()
        #expect(try await gateway.waitForExit() == 0)
        try await upstream.shutdown()
    }

    @Test func anAdminAddressThatIsTakenStopsStartUpNamingIt() async throws {
        let taken = try await FakeUpstream.start { _ in .init(body: "{}") }
        let gateway = try GatewayProcess(
            arguments: [],
            environment: baseEnvironment.merging([
                "ELEVENLABS_API_KEY": "sk_taken_admin_7", "LISTEN_PORT": "0", "ADMIN_LISTEN": "127.0.0.1:\(taken.port)",
            ]) { $1 },
            directory: try temporaryDirectory()
        )
        #expect(try await gateway.waitForExit() == 1)
        #expect(gateway.printed.contains("xi-gateway: cannot listen on 127.0.0.1:\(taken.port)"))
        #expect(!gateway.printed.contains("sk_taken_admin_7"))
        try await taken.shutdown()
    }

    @Test func aSecretAndItsFileTogetherOrAFileThatCannotBeReadStopStartUp() async throws {
        let directory = try temporaryDirectory()
        let keyFile = directory.appendingPathComponent("api-key")
        try "sk_both_ways_set_77\n".write(to: keyFile, atomically: true, encoding: .utf8)
        let both = try GatewayProcess(
            arguments: [],
            environment: baseEnvironment.merging([
                "ELEVENLABS_API_KEY": "sk_direct_value_78", "ELEVENLABS_API_KEY_FILE": keyFile.path,
            ]) { $1 },
            directory: directory
        )
        #expect(try await both.waitForExit() == 78)
        #expect(both.printed.contains("ELEVENLABS_API_KEY_FILE and ELEVENLABS_API_KEY are both set"))
        #expect(!both.printed.contains("sk_both_ways_set_77") && !both.printed.contains("sk_direct_value_78"))

        let missing = try GatewayProcess(
            arguments: [],
            environment: baseEnvironment.merging([
                "ELEVENLABS_API_KEY": "sk_direct_value_78", "ADMIN_TOKEN_FILE": "/nonexistent/admin-token",
            ]) { $1 },
            directory: directory
        )
        #expect(try await missing.waitForExit() == 78)
        #expect(missing.printed.contains("ADMIN_TOKEN_FILE names /nonexistent/admin-token, which cannot be read"))
    }

    @Test func aBadValueStopsStartUpWithOneLineNamingTheKey() async throws {
        let directory = try temporaryDirectory()
        try "ELEVENLABS_API_KEY=sk_file_key_123\nCACHE_TTL_SECONDS=-5\n"
            .write(to: directory.appendingPathComponent("proxy.conf"), atomically: true, encoding: .utf8)

        let gateway = try GatewayProcess(arguments: [], environment: baseEnvironment, directory: directory)

        #expect(try await gateway.waitForExit() == 78)
        #expect(gateway.printed.contains("CACHE_TTL_SECONDS must be an integer of seconds, 0 or more, got \"-5\""))
        #expect(!gateway.printed.contains("sk_file_key_123"))
    }

    /// However malformed, a URL's user information never reaches the start-up error: it shows as `***`.
    @Test(arguments: [
        ("ftp://user:sk_url_secret_1@host", "ftp://***@host"),
        ("user:sk_url_secret_1@host", "***@host"),
        ("https://user:sk_url_secret_1@host/?q", "https://***@host/?q"),
    ])
    func aBadUpstreamURLNeverShowsItsCredentials(url: String, shown: String) async throws {
        let gateway = try GatewayProcess(
            arguments: [],
            environment: baseEnvironment.merging(["ELEVENLABS_API_KEY": "k", "UPSTREAM_URL": url]) { $1 },
            directory: try temporaryDirectory()
        )

        #expect(try await gateway.waitForExit() == 78)
        #expect(gateway.printed.contains(shown))
        #expect(!gateway.printed.contains("sk_url_secret_1"))
    }

    @Test func aFileWithWindowsLineEndingsIsRefusedClearly() async throws {
        let directory = try temporaryDirectory()
        try "ELEVENLABS_API_KEY=k\r\nLISTEN_PORT=0\r\n"
            .write(to: directory.appendingPathComponent("proxy.conf"), atomically: true, encoding: .utf8)

        let gateway = try GatewayProcess(arguments: [], environment: baseEnvironment, directory: directory)

        #expect(try await gateway.waitForExit() == 78)
        #expect(gateway.printed.contains("Windows (CRLF) line endings"))
    }

    @Test func aMissingExplicitConfigFileIsAnError() async throws {
        let gateway = try GatewayProcess(
            arguments: ["--config", "/nonexistent/xi.conf"],
            environment: baseEnvironment.merging(["ELEVENLABS_API_KEY": "k"]) { $1 },
            directory: try temporaryDirectory()
        )

        #expect(try await gateway.waitForExit() == 78)
        #expect(gateway.printed.contains("/nonexistent/xi.conf"))
    }

    /// `xi-gateway --config FILE` and `xi-gateway run --config FILE` are the same command.
    @Test(arguments: [[], ["run"]])
    func servesFromItsConfigFileWithEnvironmentOverridesAndStopsOnSIGTERM(_ command: [String]) async throws {
        let upstream = try await FakeUpstream.start()
        let directory = try temporaryDirectory()
        let key = "sk_exec_test_7d1e0c55b2"
        let configFile = directory.appendingPathComponent("gateway.conf")
        try """
        # A test configuration
        ELEVENLABS_API_KEY=\(key)
        UPSTREAM_URL=\(upstream.baseURL)
        LISTEN_PORT=not-a-port
        CACHE_TTL_SECONDS="60"
        CACHE_TTL_SECOND=5
        """.write(to: configFile, atomically: true, encoding: .utf8)

        let gateway = try GatewayProcess(
            arguments: command + ["--config", configFile.path],
            environment: baseEnvironment.merging(["LISTEN_PORT": "0", "UPSTREAM_URL": ""]) { $1 },
            directory: directory
        )
        #expect(try await gateway.waitForOutput(containing: "listening"))
        let printedPort = gateway.printedPort()
        let port = try #require(printedPort, "no port in: \(gateway.printed)")
        #expect(gateway.printed.contains(#""cache_ttl_seconds":"60""#))
        #expect(gateway.printed.contains("unknown key CACHE_TTL_SECOND is ignored"))

        let miss = try TestHTTPConnection.request(port: port, target: "/v1/convai/test-invocations?page_size=2")
        let hit = try TestHTTPConnection.request(port: port, target: "/v1/convai/test-invocations?page_size=2")
        #expect(miss.status == 200)
        #expect(hit.header("Cache-Status")?.hasPrefix("xi-gateway; hit") == true)
        #expect(upstream.requests.count == 1)
        #expect(upstream.requests.first?.headers["xi-api-key"] == [key])

        gateway.process.interrupt()
        #expect(try await gateway.waitForExit() == 0)
        #expect(gateway.printed.contains("stopped"))
        #expect(!gateway.printed.contains(key))
        try await upstream.shutdown()
    }
}
