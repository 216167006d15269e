#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Remembers the results of a pure function for recently seen arguments, in bounded memory.
///
/// The gateway keeps the cache key of each list query it has parsed: clients repeat the same few query
/// strings, and looking one up costs a fraction of parsing and writing it canonically again. Only what
/// the function would compute again is kept, so a result found here is exactly the one a call would give.
///
/// The entries are spread over shards, each behind its own lock, so event loops rarely wait for one
/// another. A shard that reaches its share of `capacity` is emptied: cheaper than ordering entries by use,
/// and a working set that fits is built again at once.
public final class BoundedMemo<Argument: Hashable & Sendable, Result: Sendable>: Sendable {
    @usableFromInline let shards: [Locked<[Argument: Result]>]
    @usableFromInline let entriesPerShard: Int

    /// A memo of at most `capacity` entries over `shardCount` shards (each shard holds at least one, so
    /// at most `max(capacity, shardCount)`).
    public init(capacity: Int, shardCount: Int = 16) {
        precondition(shardCount > 0, "a memo needs a shard")
        entriesPerShard = max(1, capacity / shardCount)
        shards = (0..<shardCount).map { _ in Locked([:]) }
    }

    /// The result remembered for `argument`, if any.
    @inlinable
    public func value(for argument: Argument) -> Result? {
        shard(for: argument).withLock { $0[argument] }
    }

    /// Remembers `result` for `argument`.
    @inlinable
    public func remember(_ result: Result, for argument: Argument) {
        shard(for: argument).withLock { entries in
            if entries.count >= entriesPerShard, entries[argument] == nil { entries.removeAll(keepingCapacity: true) }
            entries[argument] = result
        }
    }

    @inlinable
    func shard(for argument: Argument) -> Locked<[Argument: Result]> {
        shards[Int(UInt(bitPattern: argument.hashValue) % UInt(shards.count))]
    }

    /// Entries remembered now.
    public var count: Int { shards.reduce(0) { total, shard in total + shard.withLock { $0.count } } }
}

/// A query string compared and hashed by its bytes.
///
/// `String` and `Substring` compare by Unicode canonical equivalence, under which, for one, the Kelvin
/// sign (U+212A) equals the letter K. A raw query with the one is refused and with the other is valid, so
/// a memo of parsed queries must tell them apart: this type does, byte by byte.
public struct RawQuery: Hashable, Sendable {
    /// The query, as received.
    public let text: Substring

    /// Wraps `text`.
    public init(_ text: Substring) { self.text = text }

    @inlinable
    public static func == (lhs: RawQuery, rhs: RawQuery) -> Bool {
        let bytewise = lhs.text.utf8.withContiguousStorageIfAvailable { left in
            rhs.text.utf8.withContiguousStorageIfAvailable { right in
                left.count == right.count
                    && (left.isEmpty || memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0)
            }
        }
        return (bytewise ?? nil) ?? lhs.text.utf8.elementsEqual(rhs.text.utf8)
    }

    @inlinable
    public func hash(into hasher: inout Hasher) {
        let hashed: Void? = text.utf8.withContiguousStorageIfAvailable {
            hasher.combine(bytes: UnsafeRawBufferPointer($0))
        }
        if hashed == nil {
            for byte in text.utf8 { hasher.combine(byte) }
        }
        hasher.combine(text.utf8.count)
    }
}
