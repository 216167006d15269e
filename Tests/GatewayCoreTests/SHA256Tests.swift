import Testing

@testable import GatewayCore

@Suite("SHA256: FIPS 180-4")
struct SHA256Tests {
    /// The NIST example vectors (FIPS 180-2 appendix B and the CAVP short messages).
    @Test(
        arguments: [
            ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (
                "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
            ),
            (
                "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                    + "mnopqrstnopqrstu",
                "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"
            ),
        ]
    )
    func nistVector(message: String, digest: String) {
        #expect(SHA256.hexDigest(message.utf8) == digest)
    }

    @Test func oneMillionAs() {
        let message = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        #expect(SHA256.hexDigest(message) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Lengths around the padding boundaries: 55 bytes fit one block, 56 need a second; 64 and 119/120 likewise.
    @Test(
        arguments: [
            (55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
            (56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
            (63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"),
            (64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
            (65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"),
            (119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb"),
            (120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c"),
        ]
    )
    func paddingBoundaries(length: Int, digest: String) {
        #expect(SHA256.hexDigest(repeatElement(UInt8(ascii: "a"), count: length)) == digest)
    }

    @Test func arbitraryBytes() {
        #expect(
            SHA256.hexDigest([0xFF, 0x00, 0x80]) == "ef192b7af54e943f206ab27075ec1805384c972c9959fc5820f1fa7d5268fcef"
        )
    }

    @Test func hashIsThe32BytesTheHexDigestSpells() {
        let bytes = SHA256.hash("abc".utf8)
        #expect(bytes.count == 32)
        #expect(Array(bytes.prefix(4)) == [0xBA, 0x78, 0x16, 0xBF])
        #expect(Array(bytes.suffix(4)) == [0xF2, 0x00, 0x15, 0xAD])
        let hex = SHA256.hexDigest("abc".utf8)
        #expect(hex.utf8.count == 64)
        #expect(
            hex.utf8.allSatisfy {
                ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                    || ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "f"))
            }
        )
    }

    /// Bytes in contiguous storage are hashed where they are, others are copied first: the digest is the
    /// same. The token and its digest are the README's example.
    @Test func contiguousAndOtherInputGiveTheSameDigest() {
        let token = "xgt_3b9a0593f90ef53f6cc425996fd3d7437c9e0f56671d0fe33c68d64c13e3c67e"
        let digest = "61bb9a2709825aef2e283f55766be32086ea12f80c1f9c57b6c807120cdf66a1"
        #expect(SHA256.hexDigest(token.utf8) == digest)
        #expect(SHA256.hexDigest(("  " + token).dropFirst(2).utf8) == digest)
        #expect(SHA256.hexDigest(Array(token.utf8)) == digest)
        #expect(SHA256.hexDigest(Array(token.utf8)[...]) == digest)
        #expect(SHA256.hexDigest(token.utf8.lazy.map { $0 }) == digest)
        #expect(SHA256.hexDigest(AnySequence(token.utf8)) == digest)
    }

    @Test func secretFingerprintIsTheDigestOfTheValue() {
        #expect(Secret("abc").fingerprint == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Secret("sk_test").fingerprint == "12b2820cf1639904311da5771de1e5bb65c77073fdc7c555df395942df42896b")
        #expect(Secret("one").fingerprint != Secret("two").fingerprint)
    }
}
