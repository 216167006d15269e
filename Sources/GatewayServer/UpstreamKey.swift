import GatewayCore
import Synchronization

/// The upstream key in force, which a reload may replace while serving: upstream requests built after a
/// replacement carry the new key, requests already sent keep theirs, and the cache keys of the new key's
/// questions differ from the old one's (a page is its key's answer: `access_info` describes the caller).
///
/// Read on every request for the cache key, so without a shared lock: until the first replacement the key
/// is a constant; after one, each thread keeps the credential of the last replacement it saw, checked
/// against one counter.
public final class UpstreamKey: Sendable {
    private let first: CredentialID
    private let replacements = Atomic<Int>(0)
    private let current: Locked<(secret: Secret, credential: CredentialID, replacement: Int)>
    private let seen: PerThread<(replacement: Int, credential: CredentialID)>

    /// The key `secret`.
    public init(_ secret: Secret) {
        let credential = CredentialID(secret)
        first = credential
        current = Locked((secret, credential, 0))
        seen = PerThread { (0, credential) }
    }

    /// The key, for an upstream request about to be sent.
    public var secret: Secret { current.withLock { $0.secret } }

    /// The key's identity, for cache keys.
    public var credential: CredentialID {
        let replacement = replacements.load(ordering: .acquiring)
        guard replacement > 0 else { return first }
        return seen.withLocal { seen in
            if seen.replacement != replacement {
                let now = current.withLock { (replacement: $0.replacement, credential: $0.credential) }
                seen = now
            }
            return seen.credential
        }
    }

    /// Puts `secret` in force; `false` when it is the key in force already.
    @discardableResult
    public func replace(with secret: Secret) -> Bool {
        current.withLock { state in
            guard state.secret != secret else { return false }
            state = (secret, CredentialID(secret), state.replacement + 1)
            replacements.store(state.replacement, ordering: .releasing)
            return true
        }
    }
}
