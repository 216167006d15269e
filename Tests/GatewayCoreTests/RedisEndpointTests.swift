import Testing

@testable import GatewayCore

@Suite("RedisEndpoint: REDIS_URL, parsed and shown without its password")
struct RedisEndpointTests {
    @Test(
        arguments: [
            (
                "redis://127.0.0.1", RedisEndpoint.Address.tcp(host: "127.0.0.1", port: 6379), nil, nil, 0,
                "redis://127.0.0.1:6379/0"
            ),
            (
                "redis://cache.internal:6380/3", .tcp(host: "cache.internal", port: 6380), nil, nil, 3,
                "redis://cache.internal:6380/3"
            ),
            ("REDIS://h:1/", .tcp(host: "h", port: 1), nil, nil, 0, "redis://h:1/0"),
            ("redis://:s3cret@h:6379", .tcp(host: "h", port: 6379), nil, "s3cret", 0, "redis://***@h:6379/0"),
            ("redis://gw:p%40ss%3Aw%2Fd@h", .tcp(host: "h", port: 6379), "gw", "p@ss:w/d", 0, "redis://***@h:6379/0"),
            ("redis://:p@ss@h:7000/1", .tcp(host: "h", port: 7000), nil, "p@ss", 1, "redis://***@h:7000/1"),
            ("redis://[::1]:6379", .tcp(host: "::1", port: 6379), nil, nil, 0, "redis://[::1]:6379/0"),
            (
                "unix:///run/redis/redis.sock", .unix(path: "/run/redis/redis.sock"), nil, nil, 0,
                "unix:///run/redis/redis.sock"
            ),
            ("unix:///tmp/r.sock?db=2", .unix(path: "/tmp/r.sock"), nil, nil, 2, "unix:///tmp/r.sock?db=2"),
            ("unix://:pw@/tmp/r.sock", .unix(path: "/tmp/r.sock"), nil, "pw", 0, "unix://***@/tmp/r.sock"),
            (
                "rediss://:s3cret@redis.managed.example:6380/2", .tcp(host: "redis.managed.example", port: 6380), nil,
                "s3cret", 2, "rediss://***@redis.managed.example:6380/2"
            ),
            ("REDISS://h", .tcp(host: "h", port: 6379), nil, nil, 0, "rediss://h:6379/0"),
        ] as [(String, RedisEndpoint.Address, String?, String?, Int, String)]
    )
    func parses(
        text: String,
        address: RedisEndpoint.Address,
        user: String?,
        password: String?,
        db: Int,
        shown: String
    )
        throws
    {
        let endpoint = try RedisEndpoint(text)
        #expect(endpoint.address == address)
        #expect(endpoint.username == user)
        #expect(endpoint.password?.revealed == password)
        #expect(endpoint.database == db)
        #expect(endpoint.description == shown)
        #expect(endpoint.usesTLS == text.lowercased().hasPrefix("rediss://"))
        #expect("\(endpoint)" == shown)
        if let password { #expect(!"\(endpoint)".contains(password)) }
    }

    @Test(
        arguments: [
            "", "127.0.0.1:6379", "http://h", "rediss://", "rediss://h:0", "redis://", "redis://:6379", "redis://h:0",
            "redis://h:65536", "redis://h:x", "redis://h/db", "redis://h/1024", "redis://user@h", "redis://:@h",
            "redis://:p%4@h", "redis://h w", "unix://relative.sock", "unix:///", "unix:///s?x=1", "unix:///s?db=x",
            "redis://[::1", "redis://[::1]x",
        ]
    )
    func refuses(text: String) {
        #expect(throws: RedisEndpoint.Invalid.self) { try RedisEndpoint(text) }
    }

    /// However it is wrong, the message never repeats the password.
    @Test(arguments: ["redis://:hunter2secret@h:99999", "redis://u:hunter2secret@h/x", "rediss://:hunter2secret@h:0"])
    func aRefusalNeverShowsThePassword(text: String) {
        do {
            _ = try RedisEndpoint(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(!error.problem.contains("hunter2"))
        }
    }
}
