import Foundation
import GatewayCore

/// Certificates for the TLS tests, made by `openssl` in a folder of their own: self-signed, for
/// `localhost` and `127.0.0.1`.
public struct TestCertificates: Sendable {
    /// The folder the files are in.
    public let directory: URL

    /// A new, empty folder.
    public init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("xi-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    /// A new pair whose certificate's common name is `name`, valid for `alternativeNames`: its settings (a
    /// client trusts the certificate as its own root).
    public func pair(
        _ name: String,
        days: Int = 30,
        alternativeNames: String = "DNS:localhost,IP:127.0.0.1"
    ) throws -> ListenerTLSSettings {
        let certificate = directory.appendingPathComponent("\(name).crt").path
        let key = directory.appendingPathComponent("\(name).key").path
        try Self.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", key, "-out", certificate, "-days", "\(days)", "-subj", "/CN=\(name)",
                "-addext", "subjectAltName=\(alternativeNames)",
            ]
        )
        return ListenerTLSSettings(certificateFile: certificate, keyFile: key)
    }

    /// A file holding `text`.
    public func file(_ name: String, _ text: String) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The certificates of `pairs` in one file: what a client trusts to accept any of them.
    public func roots(_ pairs: ListenerTLSSettings...) throws -> String {
        let text = try pairs.map { try String(contentsOfFile: $0.certificateFile, encoding: .utf8) }.joined()
        return try file("roots-\(UUID().uuidString).pem", text)
    }

    /// Removes the folder and everything in it.
    public func remove() { try? FileManager.default.removeItem(at: directory) }

    /// Runs `executable` and returns its exit status, standard output and standard error.
    @discardableResult
    public static func run(
        _ executable: String,
        _ arguments: [String],
        environment: [String: String]? = nil
    ) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // What these tools print is far below a pipe's buffer: one pipe read after the other cannot block.
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: outputData, as: UTF8.self),
            String(decoding: errorData, as: UTF8.self)
        )
    }
}
