internal import Crypto

/// SHA-256 (FIPS 180-4), for naming a credential without holding it: the cache key carries the digest
/// of the upstream key, never the key itself, and a team is found by the digest of its token.
///
/// Computed by swift-crypto (BoringSSL's on Linux, CryptoKit on Apple platforms): about five times faster
/// per token than the hand-written version it replaced, with 2 allocations instead of 14 (the
/// `Token SHA-256` microbenchmarks).
public struct SHA256: Sendable {
    /// The 32-byte digest of `bytes`.
    public static func hash(_ bytes: some Sequence<UInt8>) -> [UInt8] {
        var hasher = Crypto.SHA256()
        let hashedInPlace: Void? = bytes.withContiguousStorageIfAvailable {
            hasher.update(bufferPointer: UnsafeRawBufferPointer($0))
        }
        if hashedInPlace == nil { hasher.update(data: Array(bytes)) }
        return hasher.finalize().withUnsafeBytes { Array($0) }
    }

    /// The digest as lowercase hexadecimal.
    public static func hexDigest(_ bytes: some Sequence<UInt8>) -> String {
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in hash(bytes) {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
