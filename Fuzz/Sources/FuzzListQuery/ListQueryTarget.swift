import GatewayCore

/// libFuzzer's entry point: any bytes as a query string. Parsing must never crash, and a query it accepts
/// must mean the same once written canonically (the canonical form is what the cache keys on and what is
/// sent upstream).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzListQuery(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let query = try? ListQuery.parse(Substring(text)) else { return 0 }
    let canonical = query.canonicalQuery
    guard let again = try? ListQuery.parse(Substring(canonical)), again == query, again.canonicalQuery == canonical
    else {
        fatalError("canonical form changes the query: \(text) -> \(canonical)")
    }
    return 0
}
