import Foundation
import GatewayCore
import GatewayServer
import GatewayTesting
import NIOCore
import NIOSSL
import Testing

/// TLS on the API listener (`TLS_CERT_FILE`, `TLS_KEY_FILE`), with certificates `openssl` makes for each test:
/// real clients (curl, Python's `requests`, the official SDK, swift-nio-ssl) read pages over it; what is
/// not TLS 1.2 or later never reaches a route; `SIGHUP`'s reload rotates the pair for new connections only.
@Suite("TLS on the listener")
struct TLSTests {
    private let list = "/v1/convai/test-invocations?page_size=5"

    /// The environment for the tools: no proxy may stand between them and loopback.
    private static var toolEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.lowercased().hasSuffix("_proxy") }
        environment["NO_PROXY"] = "*"
        return environment
    }

    @Test func curlPythonsRequestsAndTheSDKReadPagesOverTLS() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let pair = try certificates.pair("localhost")
        let gateway = try await GatewayHarness.start(tls: try ListenerTLS(pair))
        let base = "https://127.0.0.1:\(gateway.port)"

        let curl = try TestCertificates.run(
            "/usr/bin/curl",
            ["-sS", "-v", "--cacert", pair.certificateFile, base + list, "-w", "\n%{http_code} %{http_version}"],
            environment: Self.toolEnvironment
        )
        let script = #"""
            import json, sys, httpx, requests
            from elevenlabs import ElevenLabs
            base, ca = sys.argv[1], sys.argv[2]
            r = requests.get(base + "/v1/convai/test-invocations?page_size=5", verify=ca)
            client = ElevenLabs(api_key="unused", base_url=base, httpx_client=httpx.Client(verify=ca))
            page = client.conversational_ai.tests.invocations.list(page_size=5)
            print(json.dumps({"status": r.status_code, "body": r.text, "results": len(page.results),
                              "cursor": page.next_cursor}))
            """#
        let python = try TestCertificates.run(
            SDKTests.python,
            ["-c", script, base, pair.certificateFile],
            environment: Self.toolEnvironment
        )
        let client = try await TLSTestClient.connect(port: gateway.port, roots: pair.certificateFile)
        let answer = try await client.get(list)
        await client.close()
        try await gateway.stop()

        let page = FakeUpstream.page(for: "/v1/convai/test-invocations?page_size=5")
        #expect(curl.status == 0, "\(curl.errors)")
        #expect(curl.output == page + "\n200 1.1")
        #expect(curl.errors.contains("ALPN: server accepted http/1.1"), "\(curl.errors)")
        #expect(python.status == 0, "\(python.errors)")
        struct Read: Decodable {
            var status: Int
            var body: String
            var results: Int
            var cursor: String?
        }
        let read = try JSONDecoder().decode(Read.self, from: Data(python.output.utf8))
        #expect(read.status == 200)
        #expect(read.body == page)
        #expect(read.results == 5)
        #expect(read.cursor == "cursor_after_5")
        #expect(answer.status == 200 && answer.body == page)
        #expect(gateway.upstream.requests.count == 1, "one miss, then hits over TLS")
    }

    /// Plain HTTP to the TLS port, TLS 1.0 and 1.1 (and 1.2 with `TLS_MIN_VERSION=1.3`) fail the handshake:
    /// no answer, no route, no upstream request.
    @Test(arguments: [ListenerTLSSettings.Version.v1_2, .v1_3])
    func plainHTTPAndOlderVersionsNeverReachARoute(minimum: ListenerTLSSettings.Version) async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        var pair = try certificates.pair("localhost")
        pair.minimumVersion = minimum
        let gateway = try await GatewayHarness.start(tls: try ListenerTLS(pair))
        // Each way in, in a Python of its own: OpenSSL there still speaks TLS 1.0 and 1.1 at security level 0,
        // so a refusal is the gateway's.
        let script = #"""
            import json, socket, ssl, sys
            port, ca = int(sys.argv[1]), sys.argv[2]
            out = {}
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /v1/convai/test-invocations HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            try:
                while chunk := s.recv(4096): got += chunk
            except OSError:
                pass
            out["plain"] = got.decode("latin-1")
            for name, version in [("1.0", ssl.TLSVersion.TLSv1), ("1.1", ssl.TLSVersion.TLSv1_1),
                                  ("1.2", ssl.TLSVersion.TLSv1_2), ("1.3", ssl.TLSVersion.TLSv1_3)]:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.load_verify_locations(ca)
                context.set_ciphers("DEFAULT@SECLEVEL=0")
                context.minimum_version = context.maximum_version = version
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                        with context.wrap_socket(raw, server_hostname="localhost") as tls:
                            out[name] = "accepted " + tls.version()
                except (ssl.SSLError, OSError) as error:
                    out[name] = "refused " + str(error)
            print(json.dumps(out))
            """#
        let run = try TestCertificates.run(
            "/usr/bin/env",
            ["python3", "-c", script, "\(gateway.port)", pair.certificateFile],
            environment: Self.toolEnvironment
        )
        try await gateway.stop()

        #expect(run.status == 0, "\(run.errors)")
        let outcome = try JSONDecoder().decode([String: String].self, from: Data(run.output.utf8))
        #expect(outcome["plain"] == "", "the connection closes without an HTTP answer")
        for old in ["1.0", "1.1"] + (minimum == .v1_3 ? ["1.2"] : []) {
            #expect(outcome[old]?.hasPrefix("refused") == true, "TLS \(old): \(outcome[old] ?? "")")
            #expect(outcome[old]?.contains("PROTOCOL_VERSION") == true, "the server's refusal: \(outcome[old] ?? "")")
        }
        #expect(outcome["1.3"] == "accepted TLSv1.3")
        if minimum == .v1_2 { #expect(outcome["1.2"] == "accepted TLSv1.2") }
        #expect(gateway.upstream.requests.isEmpty)
    }

    /// A client that connects and never finishes its handshake (silent, or half a record) is closed at the
    /// head timeout, long before the idle timeout.
    @Test func aStalledHandshakeEndsAtTheHeadTimeout() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let pair = try certificates.pair("localhost")
        let gateway = try await GatewayHarness.start(
            idleTimeout: .seconds(300),
            requestHeadTimeout: .seconds(1),
            tls: try ListenerTLS(pair)
        )
        let silent = try TestHTTPConnection(port: gateway.port, timeoutSeconds: 20)
        let partial = try TestHTTPConnection(port: gateway.port, timeoutSeconds: 20)
        // The start of a TLS handshake record, whose 240 bytes never come.
        try partial.send([0x16, 0x03, 0x01, 0x00, 0xF0, 0x01])
        // A handshake that finished is the head timer's no more: the connection serves past it.
        let finished = try await TLSTestClient.connect(port: gateway.port, roots: certificates.roots(pair))
        #expect(silent.waitForClose(), "closed before the 20 s read timeout")
        #expect(partial.waitForClose())
        try await Task.sleep(for: .seconds(2))
        #expect(try await finished.get(list).status == 200)
        await finished.close()
        try await gateway.stop()
    }

    /// Rotation: after a reload, new connections get the new certificate, an open one keeps its own and
    /// goes on serving; a pair that does not load or does not match leaves the one in force.
    @Test func aReloadRotatesTheCertificateForNewConnectionsOnly() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let first = try certificates.pair("first")
        let second = try certificates.pair("second")
        let roots = try certificates.roots(first, second)
        let tls = try ListenerTLS(first)
        let gateway = try await GatewayHarness.start(tls: tls)

        let before = try await TLSTestClient.connect(port: gateway.port, roots: roots)
        #expect(try await before.peerCommonName() == "first")
        #expect(try await before.get(list).status == 200)

        let rotated = tls.reload(second)
        #expect((try? rotated.get())?.subject == "CN=second, alternative names localhost,127.0.0.1")
        let after = try await TLSTestClient.connect(port: gateway.port, roots: roots)
        #expect(try await after.peerCommonName() == "second")
        #expect(try await after.get(list).status == 200)
        #expect(try await before.get(list).status == 200, "the open connection goes on")
        #expect(try await before.peerCommonName() == "first")

        // TLS_MIN_VERSION applies on a reload too: a TLS 1.2 client is refused from then on.
        var onlyTLS13 = second
        onlyTLS13.minimumVersion = .v1_3
        #expect((try? tls.reload(onlyTLS13).get()) != nil)
        await #expect(throws: (any Error).self) {
            _ = try await TLSTestClient.connect(port: gateway.port, roots: roots, maximumVersion: .tlsv12)
        }
        #expect((try? tls.reload(second).get()) != nil)
        let tls12 = try await TLSTestClient.connect(port: gateway.port, roots: roots, maximumVersion: .tlsv12)
        #expect(try await tls12.get(list).status == 200)
        await tls12.close()

        let keyText = try String(contentsOfFile: second.keyFile, encoding: .utf8)
        let keyBody = try #require(keyText.split(separator: "\n").dropFirst().first.map(String.init))
        let bad = [
            (ListenerTLSSettings(certificateFile: first.certificateFile, keyFile: second.keyFile), "TLS_KEY_FILE"),
            (ListenerTLSSettings(certificateFile: "/nonexistent/cert.pem", keyFile: second.keyFile), "TLS_CERT_FILE"),
            (
                ListenerTLSSettings(
                    certificateFile: try certificates.file("junk.crt", "not PEM"),
                    keyFile: second.keyFile
                ),
                "TLS_CERT_FILE"
            ),
            (
                ListenerTLSSettings(certificateFile: second.certificateFile, keyFile: "/nonexistent/key.pem"),
                "TLS_KEY_FILE"
            ),
            (ListenerTLSSettings(certificateFile: second.keyFile, keyFile: second.keyFile), "TLS_CERT_FILE"),
        ]
        for (settings, key) in bad {
            guard case .failure(let error) = tls.reload(settings) else {
                Issue.record("\(settings) loaded")
                continue
            }
            #expect(error.key == key, "\(error)")
            #expect(!error.description.contains(keyBody), "the key file's content is never shown")
        }
        let still = try await TLSTestClient.connect(port: gateway.port, roots: roots)
        #expect(try await still.peerCommonName() == "second", "the last good pair stays")
        for client in [before, after, still] { await client.close() }
        try await gateway.stop()
    }

    /// The binary: `check-config` loads the pair and prints its subject and expiry; a pair that does not match
    /// stops a start with exit 78 naming the key, never its content; the listener serves TLS, the start line
    /// says `https`, the metric holds the expiry, and `SIGHUP` rotates the pair (a bad one is reported and the
    /// good one stays).
    @Test func theExecutableChecksServesAndRotatesThePair() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let first = try certificates.pair("first", days: 30)
        let second = try certificates.pair("second", days: 90)
        let upstream = try await FakeUpstream.start()
        let directory = certificates.directory
        // The files the configuration names are replaced in place, as a rotation does.
        let certificate = directory.appendingPathComponent("live.crt").path
        let key = directory.appendingPathComponent("live.key").path
        func install(_ pair: ListenerTLSSettings, key keyFrom: ListenerTLSSettings? = nil) throws {
            for (from, to) in [(pair.certificateFile, certificate), ((keyFrom ?? pair).keyFile, key)] {
                try? FileManager.default.removeItem(atPath: to)
                try FileManager.default.copyItem(atPath: from, toPath: to)
            }
        }
        let environment = [
            "ELEVENLABS_API_KEY": "sk_tls_test_key", "UPSTREAM_URL": upstream.baseURL, "LISTEN_PORT": "0",
            "ADMIN_LISTEN": "127.0.0.1:0", "TLS_CERT_FILE": certificate, "TLS_KEY_FILE": key,
        ]
        let keyText = try String(contentsOfFile: first.keyFile, encoding: .utf8)
        let keyBody = try #require(keyText.split(separator: "\n").dropFirst().first.map(String.init))

        try install(first, key: second)
        let mismatched = try GatewayProcess(arguments: ["check-config"], environment: environment, directory: directory)
        #expect(try await mismatched.waitForExit() == 78)
        #expect(mismatched.printedOnStandardError.contains("TLS_KEY_FILE cannot be used with the certificate"))
        let refused = try GatewayProcess(arguments: [], environment: environment, directory: directory)
        #expect(try await refused.waitForExit() == 78)
        #expect(refused.printed.contains("TLS_KEY_FILE"))
        #expect(!mismatched.printed.contains(keyBody) && !refused.printed.contains(keyBody))

        try install(first)
        let check = try GatewayProcess(arguments: ["check-config"], environment: environment, directory: directory)
        #expect(try await check.waitForExit() == 0)
        let expiry = try #require(ListenerTLS.load(first).notValidAfter as Int?)
        #expect(
            check.printedOnStandardOutput.contains(
                "TLS certificate: CN=first, alternative names localhost,127.0.0.1; expires \(HTTPDate.format(expiry))"
            ),
            "\(check.printed)"
        )
        #expect(check.printedOnStandardOutput.contains("TLS_KEY_FILE=\(key)"))

        let gateway = try GatewayProcess(arguments: [], environment: environment, directory: directory)
        defer { if gateway.process.isRunning { gateway.process.terminate() } }
        #expect(try await gateway.waitForOutput(containing: "listening"))
        #expect(gateway.printed.contains(#""listen":"https://127.0.0.1:"#))
        let port = try #require(gateway.printedPort(), "no port in \(gateway.printed)")
        let adminPort = try #require(gateway.printedPort(admin: true))
        let roots = try certificates.roots(first, second)
        let opened = try await TLSTestClient.connect(port: port, roots: roots)
        #expect(try await opened.peerCommonName() == "first")
        #expect(try await opened.get(list).status == 200)
        let scrape = String(
            decoding: try TestHTTPConnection.request(port: adminPort, target: "/metrics").body,
            as: UTF8.self
        )
        #expect(scrape.contains("xi_gateway_tls_certificate_expiry_timestamp_seconds \(expiry).0"), "\(scrape)")

        try install(second)
        _ = kill(gateway.process.processIdentifier, SIGHUP)
        #expect(try await gateway.waitForOutput(containing: "TLS certificate reloaded"))
        let rotated = try await TLSTestClient.connect(port: port, roots: roots)
        #expect(try await rotated.peerCommonName() == "second")
        #expect(try await opened.get(list).status == 200, "the open connection goes on with its certificate")

        try install(first, key: second)
        _ = kill(gateway.process.processIdentifier, SIGHUP)
        #expect(try await gateway.waitForOutput(containing: "TLS certificate not reloaded"))
        let still = try await TLSTestClient.connect(port: port, roots: roots)
        #expect(try await still.peerCommonName() == "second")
        #expect(!gateway.printed.contains(keyBody))

        for client in [opened, rotated, still] { await client.close() }
        gateway.process.terminate()
        #expect(try await gateway.waitForExit() == 0)

        // ADMIN_TLS=on: the admin listener speaks TLS too, with the same pair.
        try install(first)
        let both = try GatewayProcess(
            arguments: [],
            environment: environment.merging(["ADMIN_TLS": "on"]) { $1 },
            directory: directory
        )
        defer { if both.process.isRunning { both.process.terminate() } }
        #expect(try await both.waitForOutput(containing: "listening"))
        #expect(both.printed.contains(#""admin_listen":"https://127.0.0.1:"#))
        let admin = try await TLSTestClient.connect(port: try #require(both.printedPort(admin: true)), roots: roots)
        #expect(try await admin.get("/healthz").status == 200)
        #expect(try await admin.peerCommonName() == "first")
        await admin.close()
        both.process.terminate()
        #expect(try await both.waitForExit() == 0)
        try await upstream.shutdown()
    }
}
