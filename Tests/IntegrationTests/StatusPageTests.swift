import Foundation
import GatewayCore
import GatewayCurl
import GatewayServer
import GatewayTesting
import Logging
import NIOCore
import NIOPosix
import Prometheus
import Testing

/// The status page in a real browser: headless Chromium (Debian's `chromium`, installed by
/// `scripts/install-deps.sh`) loads `GET /` from a running gateway's admin listener, and the test reads the
/// figures it drove (requests, hits, misses, upstream statuses, a back-off, a budget refusal) out of the
/// page's DOM, purges an agent through the page's own button with the admin token typed into it, and saves
/// a screenshot (`.build/test-artifacts/status-page.png`).
@Suite("The status page in Chromium")
struct StatusPageTests {
    static let chromium = "/usr/bin/chromium"
    static let adminToken = "admin-token-for-the-page-0123456789"
    static let searchToken = "team-search-token-0123456789"
    static let billingToken = "team-billing-token-0123456789"
    static let artifacts = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/test-artifacts")

    /// Drives Chromium over the DevTools protocol on a pipe (`--remote-debugging-pipe`: commands on fd 3,
    /// answers on fd 4), with Python's standard library only. Arguments: the page's URL, the screenshot's
    /// path, and a JSON object: `wait` (figures that must all show before anything else), `purge` (an agent
    /// to purge, and the token to type). Prints one JSON object: the page as first seen with every awaited
    /// figure, the page after the purge, and every script error or console error the browser reported.
    static let driver = #"""
        import base64, json, os, shutil, signal, subprocess, sys, tempfile, time
        url, shot, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        signal.alarm(120)
        to_chrome, from_chrome = os.pipe(), os.pipe()
        def wire():
            a, b = os.dup(to_chrome[0]), os.dup(from_chrome[1])
            os.dup2(a, 3); os.dup2(b, 4)
        profile = tempfile.mkdtemp()
        chrome = subprocess.Popen([sys.argv[4], "--headless=new", "--no-sandbox", "--disable-gpu",
            "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--remote-debugging-pipe", "--user-data-dir=" + profile, "about:blank"],
            pass_fds=(3, 4), preexec_fn=wire, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome[0]); os.close(from_chrome[1])
        buffered, counter, problems = b"", 0, []
        def receive():
            global buffered
            while b"\0" not in buffered:
                chunk = os.read(from_chrome[0], 1 << 16)
                if not chunk: raise RuntimeError("chromium closed its pipe")
                buffered += chunk
            message, buffered = buffered.split(b"\0", 1)
            return json.loads(message)
        def send(method, params=None, session=None):
            global counter
            counter += 1
            message = {"id": counter, "method": method, "params": params or {}}
            if session: message["sessionId"] = session
            os.write(to_chrome[1], json.dumps(message).encode() + b"\0")
            while True:
                got = receive()
                if got.get("id") == counter:
                    if "error" in got: raise RuntimeError(method + ": " + json.dumps(got["error"]))
                    return got.get("result", {})
                if got.get("method") == "Runtime.exceptionThrown":
                    problems.append(got["params"]["exceptionDetails"].get("exception", {}).get("description", "exception"))
                if got.get("method") == "Log.entryAdded" and got["params"]["entry"]["level"] == "error":
                    problems.append(got["params"]["entry"]["text"])
                if got.get("method") == "Runtime.consoleAPICalled" and got["params"]["type"] == "error":
                    problems.append(json.dumps(got["params"]["args"]))
        STATE = """JSON.stringify({
          figures: Object.fromEntries([...document.querySelectorAll('[data-figure]')].map(e => [e.dataset.figure, e.textContent])),
          backoff: !document.getElementById('backoff').hidden,
          error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent,
          tables: Object.fromEntries(['statuses', 'rejections', 'teams', 'agents'].map(id =>
            [id, [...document.getElementById(id).tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent))])),
          bars: ['rect', 'polyline', 'circle'].map(name => document.getElementById('chart').querySelectorAll(name).length),
          purged: document.getElementById('purge-result').textContent,
          token: document.getElementById('token').value,
          title: document.title,
          stored: localStorage.length + sessionStorage.length + document.cookie.length })"""
        def run():
            target = send("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ["Page", "Runtime", "Log"]: send(domain + ".enable", session=session)
            send("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": 1180, "deviceScaleFactor": 1, "mobile": False}, session)
            send("Page.navigate", {"url": url}, session)
            def state():
                got = send("Runtime.evaluate", {"expression": STATE, "returnByValue": True}, session)
                return None if "exceptionDetails" in got else json.loads(got["result"]["value"])
            def wait(ready):
                deadline, seen = time.time() + 30, None
                while time.time() < deadline:
                    seen = state()
                    if seen and ready(seen): return seen
                    time.sleep(0.2)
                raise RuntimeError("the page never showed what was awaited; last seen: " + json.dumps(seen))
            first = wait(lambda s: all(s["figures"].get(k) == v for k, v in spec["wait"].items()) and s["bars"][0] >= 2)
            png = send("Page.captureScreenshot", {"format": "png"}, session)["data"]
            with open(shot, "wb") as f: f.write(base64.b64decode(png))
            after = None
            if "purge" in spec:
                send("Runtime.evaluate", {"expression": "document.getElementById('token').focus()"}, session)
                send("Input.insertText", {"text": spec["purge"]["token"]}, session)
                typed = state()["token"]
                clicked = send("Runtime.evaluate", {"expression": "document.querySelector('button[data-agent=\"%s\"]').click(); true" % spec["purge"]["agent"], "returnByValue": True}, session)
                after = wait(lambda s: s["purged"] != "" and all(r[0] != spec["purge"]["agent"] for r in s["tables"]["agents"]))
                after["typed"] = typed
            return first, after
        try:
            first, after = run()
        finally:
            chrome.kill()
            chrome.wait()
            shutil.rmtree(profile, ignore_errors=True)
        print(json.dumps({"first": first, "after": after, "problems": problems}))
        """#

    struct Report: Decodable {
        struct State: Decodable {
            var figures: [String: String]
            var backoff: Bool
            var error: String?
            var tables: [String: [[String]]]
            var bars: [Int]
            var purged: String
            var token: String
            var stored: Int
            var title: String
            var typed: String?
        }

        var first: State
        var after: State?
        var problems: [String]
    }

    @Test func theFiguresItDroveShowInThePageAndItsButtonPurges() async throws {
        #expect(
            FileManager.default.isExecutableFile(atPath: Self.chromium),
            "scripts/install-deps.sh installs chromium"
        )
        let gateway = try await StatusPageGateway.start()
        // One miss and two hits, another miss; one team spends its budget of 1 and is refused the next; then a
        // 429 sets the whole key backing off, and the back-off refuses the next request.
        let search = [("xi-api-key", Self.searchToken)]
        // An agent id is the client's to choose: it must reach the page as text.
        let hostile = #"<img src=x onerror="document.title='owned'">"#
        let hostileQuery = "agent_id=" + hostile.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        for query in ["agent_id=alpha", "agent_id=alpha", "agent_id=alpha", "agent_id=beta", hostileQuery] {
            #expect(try gateway.get("/v1/convai/test-invocations?" + query, headers: search).status == 200)
        }
        let billing = [("xi-api-key", Self.billingToken)]
        #expect(try gateway.get("/v1/convai/test-invocations?agent_id=delta", headers: billing).status == 200)
        #expect(try gateway.get("/v1/convai/test-invocations?agent_id=epsilon", headers: billing).status == 429)
        #expect(try gateway.get("/v1/convai/test-invocations?agent_id=busy", headers: search).status == 429)
        #expect(try gateway.get("/v1/convai/test-invocations?agent_id=gamma", headers: search).status == 429)
        // Then hits over a few seconds, so the chart has several bars.
        for _ in 0..<3 {
            for _ in 0..<10 { _ = try gateway.get("/v1/convai/test-invocations?agent_id=alpha", headers: search) }
            try await Task.sleep(for: .milliseconds(700))
        }

        let screenshot = Self.artifacts.appendingPathComponent("status-page.png")
        try FileManager.default.createDirectory(at: Self.artifacts, withIntermediateDirectories: true)
        let spec: [String: Any] = [
            "wait": ["requests": "39", "hits": "32", "misses": "7"],
            "purge": ["agent": "alpha", "token": Self.adminToken],
        ]
        let report = try Self.drive(
            url: "http://127.0.0.1:\(gateway.adminPort)/",
            screenshot: screenshot.path,
            spec: spec
        )
        let entriesAfter = gateway.cache.statistics.entries
        try await gateway.stop()

        let first = report.first
        #expect(report.problems == [], "no script error, no CSP violation, no failed request")
        #expect(first.error == nil)
        #expect(first.figures["version"] == GatewayVersion.current)
        #expect(first.figures["hit-ratio"] == "82.1 %")
        #expect(first.figures["shared-tier"] == "off")
        #expect(first.figures["cache-entries"] == "4")
        #expect(first.figures["limit"] == "4")
        #expect(first.backoff, "the back-off banner shows")
        #expect(Int(first.figures["backoff-left"] ?? "") ?? 0 > 0)
        #expect(first.tables["statuses"] == [["200", "4"], ["429", "1"]])
        #expect(first.tables["rejections"] == [["queue full", "0"], ["queue timeout", "0"], ["backing off", "1"]])
        // A budget refills as time passes (60 a minute: one a second), so what is left is read as a range.
        let teams = first.tables["teams"] ?? []
        #expect(
            teams.map { [$0[0], $0[1], $0[2], $0[4], $0[5]] } == [
                ["search", "5", "60", "0", "5 spent, 0 refused"],
                ["billing", "1", "1", "1", "1 spent, 1 refused"],
            ]
        )
        #expect((55...60).contains(Int(teams.first?[3] ?? "") ?? -1))
        #expect(teams.last?[3] == "0")
        // Ties by the id's bytes: "<" sorts before letters.
        #expect(
            first.tables["agents"]?.map { Array($0.prefix(2)) }
                == [[hostile, "1"], ["alpha", "1"], ["beta", "1"], ["delta", "1"]]
        )
        #expect(first.title == "xi-gateway status", "the hostile id ran nothing")
        // A bar and a hit-ratio point for each second with requests: the requests took 2 seconds or more.
        #expect(first.bars[0] >= 2 && first.bars[1] == 1 && first.bars[2] == first.bars[0], "\(first.bars)")
        #expect(first.stored == 0)

        let after = try #require(report.after)
        #expect(after.typed == Self.adminToken, "the token went into the field")
        #expect(after.purged == "Purged 1 page for alpha.")
        #expect(after.token == "", "the field is cleared once the token is sent")
        #expect(after.stored == 0, "nothing kept in storage or cookies")
        #expect(after.tables["agents"]?.map(\.first) == [hostile, "beta", "delta"])
        #expect(entriesAfter == 3)

        let png = try Data(contentsOf: screenshot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "a PNG")
        #expect(png.count > 20_000)
    }

    static func drive(url: String, screenshot: String, spec: [String: Any]) throws -> Report {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let specText = String(decoding: try JSONSerialization.data(withJSONObject: spec), as: UTF8.self)
        process.arguments = ["python3", "-c", driver, url, screenshot, specText, chromium]
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.lowercased().hasSuffix("_proxy") }
        environment["NO_PROXY"] = "*"
        process.environment = environment
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let failure = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw DriverFailure(status: process.terminationStatus, message: String(decoding: failure, as: UTF8.self))
        }
        return try JSONDecoder().decode(Report.self, from: data)
    }

    struct DriverFailure: Error, CustomStringConvertible {
        var status: Int32
        var message: String
        var description: String { "the Chromium driver exited \(status): \(message)" }
    }
}

/// A gateway with an API listener and an admin listener sharing one context, as `xi-gateway` runs it: two
/// teams with budgets, an admin token, metrics, and an upstream that answers 429 for the agent `busy`.
struct StatusPageGateway {
    let upstream: FakeUpstream
    let client: CurlUpstreamClient
    let cache: ResponseCache
    let api: GatewayServer
    let admin: GatewayServer

    var adminPort: Int { admin.localPort }

    static func start() async throws -> StatusPageGateway {
        let upstream = try await FakeUpstream.start { request in
            request.uri.contains("agent_id=busy")
                ? FakeUpstream.Reply(
                    status: 429,
                    headers: [("Content-Type", "application/json"), ("Retry-After", "300")],
                    body: #"{"detail":{"status":"too_many_concurrent_requests","message":"slow down"}}"#
                )
                : .page(for: request.uri)
        }
        let client = try CurlUpstreamClient(
            configuration: CurlClientConfiguration(
                baseURL: UpstreamURL(upstream.baseURL),
                timeoutMilliseconds: 5000,
                connectTimeoutMilliseconds: 2000
            ),
            logger: Logger(label: "status-page")
        )
        let teams = try TeamRegistry(
            parsing: "search \(SHA256.hexDigest(StatusPageTests.searchToken.utf8)) upstream_per_minute=60\n"
                + "billing \(SHA256.hexDigest(StatusPageTests.billingToken.utf8)) upstream_per_minute=1\n",
            source: "test"
        )
        let cache = ResponseCache(maxBytes: 1 << 24, ttlSeconds: 30, staleSeconds: 300)
        let governor = UpstreamGovernor(
            configuration: .init(maxConcurrency: 4, maxQueue: 16, queueTimeout: .seconds(5), backoffMaxSeconds: 600)
        )
        let metrics = GatewayMetrics(registry: PrometheusCollectorRegistry(), libcurlVersion: "test")
        let service = ListService(
            cache: cache,
            upstream: client,
            governor: governor,
            apiKey: Secret("sk_status_page_0123456789"),
            waitLimit: .seconds(5),
            logger: Logger(label: "status-page"),
            metrics: metrics
        )
        let context = ServerContext(
            service: service,
            cache: cache,
            governor: governor,
            settings: .init(accessLog: false, adminToken: Secret(StatusPageTests.adminToken), teams: teams),
            accessLogger: Logger(label: "status-page"),
            metrics: metrics
        )
        let group = MultiThreadedEventLoopGroup.singleton
        let api = try await GatewayServer.start(
            configuration: .init(host: "127.0.0.1", port: 0, role: .api),
            context: context,
            group: group
        )
        let admin = try await GatewayServer.start(
            configuration: .init(host: "127.0.0.1", port: 0, role: .admin),
            context: context,
            group: group
        )
        context.setReady(true)
        return StatusPageGateway(upstream: upstream, client: client, cache: cache, api: api, admin: admin)
    }

    func get(_ target: String, headers: [(String, String)] = []) throws -> TestResponse {
        try TestHTTPConnection.request(port: api.localPort, method: "GET", target: target, headers: headers)
    }

    func stop() async throws {
        await admin.shutdown(grace: .zero)
        try await api.close()
        client.shutdown()
        try await upstream.shutdown()
    }
}
