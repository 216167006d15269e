/// The gateway's version, reported in `User-Agent` and by `xi-gateway --version`.
public enum GatewayVersion {
    /// The current release.
    public static let current = "0.1.0"
}
