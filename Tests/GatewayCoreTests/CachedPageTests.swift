import GatewayCore
import NIOCore
import Testing

@Suite("CachedPage")
struct CachedPageTests {
    @Test(arguments: ["application/json", "application/json; charset=utf-8", "text/plain; q=\u{E9}"])
    func aPageCarriesItsContentTypeAsAHeaderLine(contentType: String) {
        let page = CachedPage(body: ByteBuffer(string: "{}"), contentType: contentType, storedAt: 0)

        #expect(String(buffer: page.headerLines) == "Content-Type: \(contentType)\r\n")
        #expect(page.contentType == contentType)
    }

    /// A type that could end the line and start another is never written: the page has no header line.
    @Test(arguments: ["application/json\r\nSet-Cookie: a=1", "a\nb", "a\u{0}b", "a\u{7F}"])
    func aContentTypeThatIsNotAllowedInAHeaderIsLeftOut(contentType: String) {
        let page = CachedPage(body: ByteBuffer(string: "{}"), contentType: contentType, storedAt: 0)

        #expect(page.headerLines.readableBytes == 0)
        #expect(page.contentType == "")
    }
}
