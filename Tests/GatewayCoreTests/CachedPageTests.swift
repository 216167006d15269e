import GatewayCore
import NIOCore
import Testing

@Suite("CachedPage")
struct CachedPageTests {
    static let json = #"{"results":[{"id":"inv_0"},{"id":"inv_1"},{"id":"inv_2"},{"id":"inv_3"}],"has_more":false}"#

    static func gzipPage(_ text: String = json, modifiedAt: Int = 784_111_777) -> CachedPage {
        let packed = Array(text.utf8).withUnsafeBytes { Gzip.compress($0)! }
        return CachedPage(
            body: ByteBuffer(bytes: packed),
            coding: .gzip,
            identityByteCount: text.utf8.count,
            contentType: "application/json",
            storedAt: 0,
            modifiedAt: modifiedAt
        )
    }

    @Test(arguments: ["application/json", "application/json; charset=utf-8", "text/plain; q=\u{E9}"])
    func aPageCarriesItsContentTypeAsAHeaderLine(contentType: String) {
        let page = CachedPage(body: ByteBuffer(string: "{}"), contentType: contentType, storedAt: 0)

        #expect(String(buffer: page.headerLines).hasPrefix("Content-Type: \(contentType)\r\nETag: \""))
        #expect(page.contentType == contentType)
    }

    /// A type that could end the line and start another is never written: the page has no such line.
    @Test(arguments: ["application/json\r\nSet-Cookie: a=1", "a\nb", "a\u{0}b", "a\u{7F}"])
    func aContentTypeThatIsNotAllowedInAHeaderIsLeftOut(contentType: String) {
        let page = CachedPage(body: ByteBuffer(string: "{}"), contentType: contentType, storedAt: 0)

        #expect(String(buffer: page.headerLines).hasPrefix("ETag: \""))
        #expect(!String(buffer: page.headerLines).contains("Set-Cookie"))
        #expect(page.contentType == "")
    }

    /// Each form has its own header lines: the gzip form names its coding, each has its own strong tag, both
    /// carry `Last-Modified`, and a `304` repeats only the validators.
    @Test func eachFormHasItsHeaderLinesAndItsOwnTag() throws {
        let page = Self.gzipPage()
        let identity = String(buffer: page.headerLines(for: .identity))
        let gzip = String(buffer: page.headerLines(for: .gzip))
        let tag = page.entityTag(for: .identity)

        #expect(tag.utf8.count == 34 && tag.hasPrefix("\"") && tag.hasSuffix("\""), "128 bits in hexadecimal")
        #expect(page.entityTag(for: .gzip) == tag.dropLast() + "-gzip\"")
        let validators = "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        #expect(identity == "Content-Type: application/json\r\nETag: \(tag)\r\n\(validators)")
        #expect(
            gzip == "Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
                + "ETag: \(page.entityTag(for: .gzip))\r\n\(validators)"
        )
        #expect(String(buffer: page.headerLines(for: .identity, notModified: true)) == "ETag: \(tag)\r\n\(validators)")
        #expect(
            String(buffer: page.headerLines(for: .gzip, notModified: true))
                == "ETag: \(page.entityTag(for: .gzip))\r\n\(validators)"
        )
        #expect(page.byteCount == page.body.readableBytes + identity.utf8.count + gzip.utf8.count)
    }

    /// The tag is the stored bytes' digest: the same bytes are tagged alike (on every replica), other bytes
    /// otherwise.
    @Test func theTagFollowsTheStoredBytes() {
        #expect(Self.gzipPage().entityTag(for: .gzip) == Self.gzipPage(modifiedAt: 1).entityTag(for: .gzip))
        #expect(Self.gzipPage().entityTag(for: .gzip) != Self.gzipPage(Self.json + " ").entityTag(for: .gzip))
    }

    /// An identity page (`COMPRESSION=off`) has one form: a gzip client gets it.
    @Test func anIdentityPageHasOneForm() {
        let page = CachedPage(body: ByteBuffer(string: Self.json), contentType: "application/json", storedAt: 0)

        #expect(page.coding(acceptingGzip: true) == .identity)
        #expect(page.identityByteCount == Self.json.utf8.count)
        #expect(!String(buffer: page.headerLines).contains("Content-Encoding"))
        #expect(page.entityTag(for: .gzip) == page.entityTag(for: .identity))
    }

    /// An identity client's form of a gzip page is unpacked once per thread, then reused.
    @Test func theIdentityFormIsUnpackedOnceAndKept() throws {
        let forms = IdentityForms(capacity: 2)
        let page = Self.gzipPage()

        let first = try #require(forms.identity(of: page))
        #expect(String(buffer: first) == Self.json)
        #expect(forms.count == 1)
        let again = try #require(forms.identity(of: page))
        #expect(again == first)
        #expect(forms.count == 1)
        // Bounded: a third page empties the memo rather than growing it.
        _ = forms.identity(of: Self.gzipPage("{\"a\":1}"))
        _ = forms.identity(of: Self.gzipPage("{\"b\":2}"))
        #expect(forms.count <= 2)
    }

    /// Stored bytes that do not unpack to the size they were stored with are never served as the page.
    @Test func aDamagedGzipFormIsNotServed() {
        let good = Self.gzipPage()
        var damaged = good.body
        damaged.setInteger(UInt8(0xFF), at: damaged.writerIndex - 5)
        let page = CachedPage(
            body: damaged,
            coding: .gzip,
            identityByteCount: good.identityByteCount,
            contentType: "application/json",
            storedAt: 0,
            modifiedAt: 0
        )
        #expect(IdentityForms().identity(of: page) == nil)
    }
}
