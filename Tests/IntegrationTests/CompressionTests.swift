import GatewayCore
import GatewayTesting
import NIOHTTP1
import Testing

/// Pages asked for, stored and served as gzip, through the real listener, libcurl and a loopback upstream
/// that answers gzip when asked, as the real one does.
@Suite("Compression and conditional requests, end to end")
struct CompressionTests {
    static let target = "/v1/convai/test-invocations?page_size=30"
    static let gzip = [("Accept-Encoding", "gzip")]

    static func unpacked(_ bytes: [UInt8]) throws -> [UInt8] {
        try bytes.withUnsafeBytes { try Gzip.decompress($0, limit: 1 << 24) }
    }

    /// The upstream's gzip is kept as it came and sent to gzip clients; identity clients get the JSON the
    /// upstream would have sent them, byte for byte; both forms say they vary by `Accept-Encoding`.
    @Test func gzipClientsGetTheUpstreamsGzipAndOthersItsJSON() async throws {
        let gateway = try await GatewayHarness.start()
        let json = Array(FakeUpstream.page(for: Self.target).utf8)
        let upstreamGzip = try #require(json.withUnsafeBytes { Gzip.compress($0, level: 6) })

        let miss = try gateway.get(Self.target, headers: Self.gzip)
        let identity = try gateway.get(Self.target)
        let hit = try gateway.get(Self.target, headers: [("Accept-Encoding", "deflate, gzip;q=0.5")])

        #expect(miss.status == 200)
        #expect(miss.header("content-encoding") == "gzip")
        #expect(miss.body == upstreamGzip, "the upstream's bytes, as sent")
        #expect(hit.body == upstreamGzip)
        #expect(hit.header("cache-status")?.contains("hit") == true)
        #expect(identity.header("content-encoding") == nil)
        #expect(identity.body == json)
        for response in [miss, identity, hit] {
            #expect(response.header("vary") == "Accept-Encoding")
            #expect(response.header("content-type") == "application/json")
            #expect(response.header("last-modified")?.hasSuffix(" GMT") == true)
        }
        #expect(miss.header("etag") == hit.header("etag"))
        let invalid = try gateway.get("/v1/convai/test-invocations?page_size=0", headers: Self.gzip)
        #expect(invalid.status == 422)
        #expect(invalid.header("vary") == "Accept-Encoding", "every list answer, the gateway's own too")
        #expect(identity.header("etag") != miss.header("etag"), "each form has its own strong tag")
        let request = try #require(gateway.upstream.requests.first)
        #expect(request.headers["accept-encoding"] == ["gzip"])
        #expect(gateway.upstream.requests.count == 1)
        // What the cache holds is the gzip form: its cost is a fraction of the JSON's.
        #expect(Double(gateway.cache.statistics.bytes) < 0.35 * Double(json.count))
        try await gateway.stop()
    }

    /// An upstream that answers identity: the page is compressed once, when stored.
    @Test func anIdentityAnswerIsCompressedOnceWhenStored() async throws {
        let gateway = try await GatewayHarness.start(
            script: { request in
                var reply = FakeUpstream.Reply.page(for: request.uri)
                reply.headers.append(("Content-Encoding", "identity"))
                return reply
            }
        )
        let json = Array(FakeUpstream.page(for: Self.target).utf8)

        let first = try gateway.get(Self.target, headers: Self.gzip)
        let second = try gateway.get(Self.target)

        #expect(first.header("content-encoding") == "gzip")
        #expect(try Self.unpacked(first.body) == json)
        #expect(second.body == json)
        #expect(Double(gateway.cache.statistics.bytes) < 0.35 * Double(json.count))
        try await gateway.stop()
    }

    /// `HEAD` names the length of the form a `GET` with the same `Accept-Encoding` would get.
    @Test func headNamesTheLengthOfTheFormAGetWouldGet() async throws {
        let gateway = try await GatewayHarness.start()
        let gzipBody = try gateway.get(Self.target, headers: Self.gzip).body
        let identityBody = try gateway.get(Self.target).body

        let gzipHead = try gateway.get(Self.target, method: "HEAD", headers: Self.gzip)
        let identityHead = try gateway.get(Self.target, method: "HEAD", headers: [("Accept-Encoding", "gzip;q=0")])

        #expect(gzipHead.header("content-length") == "\(gzipBody.count)")
        #expect(gzipHead.header("content-encoding") == "gzip")
        #expect(identityHead.header("content-length") == "\(identityBody.count)")
        #expect(identityHead.header("content-encoding") == nil)
        #expect(gzipBody.count < identityBody.count)
        try await gateway.stop()
    }

    /// A client whose copy is current gets `304` with the form's validators, `Age` and `Cache-Status`, no
    /// body and no `Content-Length`; the next request on the connection is read where the 304 ended.
    @Test func aClientWithTheCurrentCopyGets304() async throws {
        let gateway = try await GatewayHarness.start()
        let first = try gateway.get(Self.target, headers: Self.gzip)
        let tag = try #require(first.header("etag"))
        let modified = try #require(first.header("last-modified"))

        let connection = try TestHTTPConnection(port: gateway.port)
        let conditions: [[(String, String)]] = [
            Self.gzip + [("If-None-Match", tag)],
            Self.gzip + [("If-None-Match", "\"other\", W/\(tag)")],
            Self.gzip + [("If-None-Match", "*")],
            Self.gzip + [("If-Modified-Since", modified)],
        ]
        for headers in conditions {
            var text = "GET \(Self.target) HTTP/1.1\r\nHost: h\r\n"
            for (name, value) in headers { text += "\(name): \(value)\r\n" }
            try connection.send(text + "\r\n")
            let response = try connection.readResponse()
            #expect(response.status == 304, "\(headers)")
            #expect(response.header("etag") == tag)
            #expect(response.header("vary") == "Accept-Encoding")
            #expect(response.header("age") != nil)
            #expect(response.header("cache-status")?.hasPrefix("xi-gateway; hit; ttl=") == true)
            #expect(response.header("content-length") == nil)
            #expect(response.header("content-encoding") == nil)
            #expect(response.body.isEmpty)
        }
        // The same connection still answers: the 304s sent no body.
        try connection.send("GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        #expect(try connection.readResponse().status == 200)

        // The identity form has its own tag, and its own 304.
        let identity = try gateway.get(Self.target)
        let identityTag = try #require(identity.header("etag"))
        let identityNotModified = try gateway.get(Self.target, headers: [("If-None-Match", identityTag)])
        #expect(identityNotModified.status == 304)
        #expect(identityNotModified.header("etag") == identityTag)
        let head = try gateway.get(Self.target, method: "HEAD", headers: Self.gzip + [("If-None-Match", tag)])
        #expect(head.status == 304)

        // The gzip form's tag does not match the identity form; a changed tag or an older date gets the page.
        #expect(try gateway.get(Self.target, headers: [("If-None-Match", tag)]).status == 200)
        #expect(try gateway.get(Self.target, headers: Self.gzip + [("If-None-Match", "\"x\"")]).status == 200)
        let older = "Sun, 06 Nov 1994 08:49:37 GMT"
        #expect(try gateway.get(Self.target, headers: Self.gzip + [("If-Modified-Since", older)]).status == 200)
        #expect(gateway.upstream.requests.count == 1)
        try await gateway.stop()
    }

    /// A 304 is a hit: it costs the team nothing, however small its budget.
    @Test func a304IsFreeForTheTeam() async throws {
        let token = "tok-compression-team-0001"
        let teams = try TeamRegistry(
            parsing: "blue \(SHA256.hexDigest(token.utf8)) upstream_per_minute=1\n",
            source: "test"
        )
        let gateway = try await GatewayHarness.start(teams: teams)
        let first = try gateway.get(Self.target, headers: [("xi-api-key", token)])
        let tag = try #require(first.header("etag"))

        for _ in 0..<5 {
            let again = try gateway.get(Self.target, headers: [("xi-api-key", token), ("If-None-Match", tag)])
            #expect(again.status == 304)
            #expect(again.header("ratelimit")?.hasPrefix("\"upstream\";r=0;t=") == true)
        }
        #expect(gateway.upstream.requests.count == 1)
        try await gateway.stop()
    }

    /// Upstream bodies that do not unpack are unusable: a 502 `bad_upstream_response`, nothing stored, and
    /// the next request asks again.
    @Test(
        arguments: [
            ("a gzip bomb: 8 MiB of valid JSON in a few kilobytes", "bomb"),
            ("a stream cut short", "truncated"),
            ("a stream without its trailer (the JSON itself whole)", "trailer"),
            ("a damaged stream", "damaged"),
            ("a coding not asked for", "br"),
        ]
    )
    func anUpstreamBodyThatDoesNotUnpackIsA502AndNotStored(_ description: String, kind: String) async throws {
        let json = Array(FakeUpstream.page(for: Self.target).utf8)
        let packed = try #require(json.withUnsafeBytes { Gzip.compress($0) })
        let bombJSON =
            Array(#"{"a":""#.utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 8 << 20) + Array(#""}"#.utf8)
        let bomb = try #require(bombJSON.withUnsafeBytes { Gzip.compress($0) })
        let gateway = try await GatewayHarness.start(
            maxResponseBytes: 1 << 20,
            script: { _ in
                var reply = FakeUpstream.Reply(
                    headers: [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
                    body: ""
                )
                switch kind {
                case "bomb": reply.rawBody = bomb
                case "truncated": reply.rawBody = Array(packed.dropLast(12))
                case "trailer": reply.rawBody = Array(packed.dropLast(8))
                case "damaged":
                    var damaged = packed
                    damaged[damaged.count / 2] ^= 0xFF
                    reply.rawBody = damaged
                default:
                    reply.headers = [("Content-Type", "application/json"), ("Content-Encoding", "br")]
                    reply.rawBody = packed
                }
                return reply
            }
        )
        #expect(bomb.count < 1 << 20, "the bomb itself is under the limit; what it unpacks to is not")

        let first = try gateway.get(Self.target, headers: Self.gzip)
        let second = try gateway.get(Self.target)

        #expect(first.status == 502, "\(description)")
        #expect(first.text.contains("bad_upstream_response"))
        #expect(first.header("vary") == "Accept-Encoding", "every list answer says it varies")
        #expect(second.status == 502)
        #expect(gateway.upstream.requests.count == 2)
        #expect(gateway.cache.statistics.entries == 0)
        try await gateway.stop()
    }

    /// A stream of several gzip members unpacks whole, but clients such as httpx read only the first: the
    /// page is stored compressed again, as one member.
    @Test func aStreamOfSeveralMembersIsStoredAsOne() async throws {
        let json = Array(FakeUpstream.page(for: Self.target).utf8)
        let half = json.count / 2
        let first = try #require(json[..<half].withUnsafeBytes { Gzip.compress($0) })
        let second = try #require(json[half...].withUnsafeBytes { Gzip.compress($0) })
        let gateway = try await GatewayHarness.start(
            script: { _ in
                var reply = FakeUpstream.Reply(
                    headers: [("Content-Type", "application/json"), ("Content-Encoding", "gzip")],
                    body: ""
                )
                reply.rawBody = first + second
                return reply
            }
        )

        let response = try gateway.get(Self.target, headers: Self.gzip)

        #expect(response.status == 200)
        let unpacked = try response.body.withUnsafeBytes { try Gzip.unpack($0, limit: 1 << 20) }
        #expect(unpacked.members == 1)
        #expect(unpacked.bytes == json)
        try await gateway.stop()
    }

    /// A status other than 200 whose body does not unpack is still passed on, without the body: what the
    /// status says (here, when to retry) reaches the client.
    @Test func anErrorAnswerThatDoesNotUnpackIsPassedOnWithoutItsBody() async throws {
        let gateway = try await GatewayHarness.start(
            script: { _ in
                var reply = FakeUpstream.Reply(
                    status: 429,
                    headers: [
                        ("Content-Type", "application/json"), ("Content-Encoding", "gzip"), ("Retry-After", "7"),
                    ],
                    body: ""
                )
                reply.rawBody = [0x1F, 0x8B, 0x08, 0x00, 0x01, 0x02]
                return reply
            }
        )

        let response = try gateway.get(Self.target, headers: Self.gzip)

        #expect(response.status == 429)
        #expect(response.header("retry-after") == "7")
        #expect(response.body.isEmpty)
        #expect(response.header("content-encoding") == nil)
        try await gateway.stop()
    }

    /// Any other status is passed on as identity, whatever coding it came in.
    @Test func anErrorAnswerInGzipIsPassedOnUnpacked() async throws {
        let body = #"{"detail":{"status":"not_found","message":"no such agent"}}"#
        let gateway = try await GatewayHarness.start(script: { _ in .init(status: 404, body: body) })

        let response = try gateway.get(Self.target, headers: Self.gzip)

        #expect(response.status == 404)
        #expect(response.header("content-encoding") == nil)
        #expect(response.header("vary") == "Accept-Encoding")
        #expect(response.text == body)
        let request = try #require(gateway.upstream.requests.first)
        #expect(request.headers["accept-encoding"] == ["gzip"], "so the fake answered in gzip")
        try await gateway.stop()
    }

    /// `COMPRESSION=off`: as before compression, libcurl takes any coding it can undo and the page is
    /// stored as JSON; a gzip client gets that (no `Content-Encoding`, no `Vary`).
    @Test func compressionOffAsksForAndStoresIdentity() async throws {
        let gateway = try await GatewayHarness.start(compression: false)
        let json = Array(FakeUpstream.page(for: Self.target).utf8)

        let first = try gateway.get(Self.target, headers: Self.gzip)
        let second = try gateway.get(Self.target, headers: Self.gzip)

        for response in [first, second] {
            #expect(response.body == json)
            #expect(response.header("content-encoding") == nil)
            #expect(response.header("vary") == nil)
            #expect(response.header("etag") != nil)
        }
        #expect(gateway.cache.statistics.bytes > json.count)
        try await gateway.stop()
    }
}
