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
/// Each thread keeps its own table (``PerThread``), so event loops never wait for one another nor pass a
/// lock's cache line between cores on a hit; each loop learns its working set on its own. A table that
/// reaches `capacity` is emptied: cheaper than ordering entries by use, and a working set that fits is
/// built again at once.
public final class BoundedMemo<Argument: Hashable & Sendable, Result: Sendable>: Sendable {
    @usableFromInline let tables: PerThread<[Argument: Result]>
    @usableFromInline let capacity: Int

    /// A memo of at most `capacity` entries per thread that uses it.
    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        tables = PerThread { [:] }
    }

    /// The result remembered for `argument` by the calling thread, if any.
    @inlinable
    public func value(for argument: Argument) -> Result? {
        tables.withLocal { $0[argument] }
    }

    /// Remembers `result` for `argument`, on the calling thread.
    @inlinable
    public func remember(_ result: Result, for argument: Argument) {
        tables.withLocal { entries in
            if entries.count >= capacity, entries[argument] == nil { entries.removeAll(keepingCapacity: true) }
            entries[argument] = result
        }
    }

    /// Entries remembered now, by all threads.
    public var count: Int { tables.reduce(0) { total, entries in total + entries.count } }

    /// Entries remembered now by the calling thread.
    public var localCount: Int { tables.withLocal { $0.count } }
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
