import Foundation
import GatewayCore
import GatewayTesting
import Testing

/// The official Python SDK (`elevenlabs`, pinned by `scripts/install-deps.sh` in `.build/python-sdk`) reads
/// pages through the gateway. Its `httpx` asks for gzip on every request, so it gets the stored gzip form
/// and must read the same pages as the upstream's JSON.
@Suite("The official SDK through the gateway")
struct SDKTests {
    static let python = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/python-sdk/bin/python").path

    /// Lists two pages with the SDK's raw client and prints, for each, what httpx was sent and what it
    /// read; the SDK's own model must parse each page.
    static let script = #"""
        import json, sys
        from elevenlabs import ElevenLabs
        client = ElevenLabs(api_key="team-token-unused", base_url=sys.argv[1])
        out = []
        for _ in range(2):
            raw = client.conversational_ai.tests.invocations.with_raw_response.list(page_size=5, agent_id="sdk")
            out.append({
                "encoding": raw.headers.get("content-encoding"),
                "vary": raw.headers.get("vary"),
                "cache": raw.headers.get("cache-status"),
                "body": raw._response.text,
                "results": len(raw.data.results),
                "cursor": raw.data.next_cursor,
            })
        print(json.dumps(out))
        """#

    struct Read: Decodable {
        var encoding: String?
        var vary: String?
        var cache: String?
        var body: String
        var results: Int
        var cursor: String?
    }

    @Test func theSDKReadsGzipPagesAsTheUpstreamsJSON() async throws {
        #expect(
            FileManager.default.isExecutableFile(atPath: Self.python),
            "scripts/install-deps.sh (make deps) installs the SDK in .build/python-sdk"
        )
        let gateway = try await GatewayHarness.start()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.python)
        process.arguments = ["-c", Self.script, "http://127.0.0.1:\(gateway.port)"]
        // httpx honours the environment's proxies: loopback must not go through one.
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.lowercased().hasSuffix("_proxy") }
        environment["NO_PROXY"] = "*"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try await gateway.stop()

        #expect(process.terminationStatus == 0)
        let reads = try JSONDecoder().decode([Read].self, from: data)
        let expected = FakeUpstream.page(for: "/v1/convai/test-invocations?agent_id=sdk&page_size=5")
        #expect(reads.count == 2)
        for read in reads {
            #expect(read.encoding == "gzip", "httpx asked for gzip and got the stored form")
            #expect(read.vary == "Accept-Encoding")
            #expect(read.body == expected, "unpacked by httpx: the upstream's JSON, byte for byte")
            #expect(read.results == 5)
            #expect(read.cursor == "cursor_after_5")
        }
        #expect(reads.first?.cache?.contains("fwd=miss") == true)
        #expect(reads.last?.cache?.hasPrefix("xi-gateway; hit") == true)
        #expect(gateway.upstream.requests.count == 1)
    }
}
