/// W3C Trace Context (https://www.w3.org/TR/trace-context/): the trace a request belongs to, read from its
/// `traceparent` header or made for it, and the span the gateway opens for the upstream request it causes.
///
/// The gateway records no spans; it keeps the trace whole: an upstream request carries the client's trace id,
/// with the gateway's span as its parent, and the access log line names the trace.
public struct TraceContext: Sendable, Hashable {
    /// The trace id's high and low 64 bits (never both zero).
    public var traceIDHigh: UInt64
    public var traceIDLow: UInt64
    /// The gateway's span: the parent id the upstream request carries (never zero).
    public var spanID: UInt64
    /// The trace flags, as far as version 00 defines them (`sampled`, 0x01).
    public var flags: UInt8

    /// Creates a context; `traceIDHigh`/`traceIDLow` and `spanID` must not be zero.
    public init(traceIDHigh: UInt64, traceIDLow: UInt64, spanID: UInt64, flags: UInt8) {
        self.traceIDHigh = traceIDHigh
        self.traceIDLow = traceIDLow
        self.spanID = spanID
        self.flags = flags & 0x01
    }

    /// The context of a request that sent `traceparent`, with `spanID` as the gateway's span; `nil` when the
    /// header is not valid (wrong length, upper case, version `ff`, an all-zero id), and a new trace is then
    /// made. A later version is read as version 00 where it agrees with it, as the specification asks.
    public init?(traceparent: String, spanID: UInt64) {
        var text = traceparent
        let parsed: (UInt64, UInt64, UInt8)? = text.withUTF8 { bytes in
            guard bytes.count >= 55 else { return nil }
            guard let version = Self.hex(bytes, 0, 2), version != 0xFF,
                bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-"),
                let high = Self.hex(bytes, 3, 16), let low = Self.hex(bytes, 19, 16), high | low != 0,
                let parent = Self.hex(bytes, 36, 16), parent != 0,
                let flags = Self.hex(bytes, 53, 2)
            else { return nil }
            if version == 0 {
                guard bytes.count == 55 else { return nil }
            } else if bytes.count > 55, bytes[55] != UInt8(ascii: "-") {
                return nil
            }
            return (high, low, UInt8(flags))
        }
        guard let (high, low, flags) = parsed, spanID != 0 else { return nil }
        self.init(traceIDHigh: high, traceIDLow: low, spanID: spanID, flags: flags)
    }

    /// A new trace, for a request that sent none (not sampled: the gateway records nothing of it).
    public static func new(using generator: inout some RandomNumberGenerator) -> TraceContext {
        var high: UInt64 = 0
        var low: UInt64 = 0
        while high | low == 0 {
            high = generator.next()
            low = generator.next()
        }
        return TraceContext(traceIDHigh: high, traceIDLow: low, spanID: newSpanID(using: &generator), flags: 0)
    }

    /// A span id: random, never zero.
    public static func newSpanID(using generator: inout some RandomNumberGenerator) -> UInt64 {
        var span: UInt64 = 0
        while span == 0 { span = generator.next() }
        return span
    }

    /// The trace id: 32 lowercase hexadecimal digits, written in one string.
    public var traceID: String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            Self.writeHex(traceIDHigh, into: buffer, at: 0)
            Self.writeHex(traceIDLow, into: buffer, at: 16)
            return 32
        }
    }

    /// The `traceparent` the upstream request carries: version 00, this trace, the gateway's span as parent.
    public var traceparent: String {
        "00-" + traceID + "-" + Self.hex(spanID) + "-" + (flags & 0x01 == 0 ? "00" : "01")
    }

    /// `value` as 16 lowercase hexadecimal digits.
    private static func hex(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            writeHex(value, into: buffer, at: 0)
            return 16
        }
    }

    /// Writes `value`'s 16 lowercase hexadecimal digits into `buffer` from `offset`.
    private static func writeHex(_ value: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at offset: Int) {
        for index in 0..<16 {
            let digit = UInt8((value >> UInt64(60 - 4 * index)) & 0xF)
            buffer[offset + index] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
        }
    }

    /// The `count` lowercase hexadecimal digits at `offset` of `bytes` (at most 16), or `nil`.
    private static func hex(_ bytes: UnsafeBufferPointer<UInt8>, _ offset: Int, _ count: Int) -> UInt64? {
        var value: UInt64 = 0
        for byte in bytes[offset..<(offset + count)] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            default: return nil
            }
            value = value << 4 | UInt64(digit)
        }
        return value
    }
}

/// A fast generator for trace and span ids (SplitMix64), one per connection, seeded from the system's
/// generator: an id costs a few instructions, not a system call. Ids need to be unique and unguessable
/// enough for tracing, not secret.
public struct TraceIDGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator seeded from the system's random source.
    public init() {
        var system = SystemRandomNumberGenerator()
        state = system.next()
    }

    /// A generator with a fixed seed (tests).
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
