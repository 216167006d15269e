import Testing

@testable import GatewayCore

@Suite("HeaderField: the bytes names, values and Host may hold")
struct HeaderFieldTests {
    /// A `Host` value is `uri-host [":" port]` (RFC 3986, 3.2.2): exactly these bytes, of all 256.
    @Test func hostBytesAreTheHostGrammarsAndNoOthers() {
        let allowed = Set(
            Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)
                + Array("-._~%!$&'()*+,;=:[]".utf8)
        )
        for byte in UInt8.min...UInt8.max {
            #expect(HeaderField.isHostByte(byte) == allowed.contains(byte), "byte \(byte)")
        }
    }
}
