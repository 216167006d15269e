/// URLs as configuration messages show them: a URL may carry a password (`scheme://user:password@host`), so
/// every message about one shows it with its user information replaced by `***`, however malformed it is.
public enum RedactedURL {
    /// `text` with what precedes the last `@` of its authority replaced by `***`
    /// (`ftp://user:sk_x@host/p` → `ftp://***@host/p`); text with no `://` at all shows nothing before its
    /// last `@` (`user:pw@host` → `***@host`).
    public static func shown(_ text: String) -> String {
        guard let separator = text.firstRange(of: "://") else {
            guard let at = text.lastIndex(of: "@") else { return text }
            return "***" + text[at...]
        }
        let rest = text[separator.upperBound...]
        // Up to the last `@` anywhere, not only in the authority: a password may hold `/`, `?` or `#`
        // (`https://u:p/w@h`), and masking a little too much in an error message costs nothing.
        guard let at = rest.lastIndex(of: "@") else { return text }
        return String(text[..<separator.upperBound]) + "***" + rest[at...]
    }

    /// Whether `text` is a URL libcurl takes as a proxy: a known scheme, `://`, and a host.
    public static func isProxyURL(_ text: String) -> Bool {
        guard let separator = text.firstRange(of: "://") else { return false }
        let scheme = text[..<separator.lowerBound].lowercased()
        guard ["http", "https", "socks4", "socks4a", "socks5", "socks5h"].contains(scheme) else { return false }
        let rest = text[separator.upperBound...]
        guard rest.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return false }
        let authority = rest.prefix { $0 != "/" }
        let host = authority.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
        return !host.isEmpty && !host.hasPrefix(":")
    }
}
