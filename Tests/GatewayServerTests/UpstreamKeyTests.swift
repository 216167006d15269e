import GatewayCore
import GatewayTesting
import NIOHTTP1
import Testing

@testable import GatewayServer

@Suite("The upstream key, replaced while serving")
struct UpstreamKeyTests {
    @Test func aReplacementChangesTheSecretAndTheCredentialOnEveryThread() async {
        let key = UpstreamKey(Secret("sk_one"))
        #expect(key.credential == CredentialID(Secret("sk_one")))
        #expect(!key.replace(with: Secret("sk_one")), "the same key is no change")
        #expect(key.replace(with: Secret("sk_two")))
        #expect(key.secret.revealed == "sk_two")
        #expect(key.credential == CredentialID(Secret("sk_two")))
        #expect(key.replace(with: Secret("sk_three")))
        // Every thread sees the last replacement, whatever it saw before.
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { key.credential == CredentialID(Secret("sk_three")) }
            }
            for await seen in group { #expect(seen) }
        }
    }

    /// After a replacement a known query is the new key's question: not the old key's page, not its
    /// remembered cache key; the upstream gets the new key.
    @Test func theServiceAsksWithTheNewKeyAndDoesNotServeTheOldKeysPage() throws {
        let fixture = ServiceFixture(apiKey: "sk_before")
        _ = try fixture.get("page_size=5")
        #expect(try fixture.get("page_size=5").cacheStatus == .hit(ttl: 30))
        fixture.service.upstreamKey.replace(with: Secret("sk_after"))
        let after = try fixture.get("page_size=5")
        #expect(after.cacheStatus == .fetched(.stored, collapsed: false))
        #expect(fixture.upstream.requests.map { $0.headers["xi-api-key"] } == [["sk_before"], ["sk_after"]])
        #expect(try fixture.get("page_size=5").cacheStatus == .hit(ttl: 30))
    }
}
