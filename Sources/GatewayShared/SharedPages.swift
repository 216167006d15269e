import GatewayCore
import NIOCore

/// The shared tier's pages and flights for one upstream credential, over Redis: where a replica that missed
/// its own cache finds a page another replica stored, or learns whether it leads the one upstream request
/// for the question or follows another replica's. Each step is one of ``SharedScripts``.
///
/// Every key starts with the prefix and one hash tag per credential, so a Redis cluster keeps a
/// credential's keys in one slot and the scripts stay valid there.
public final class SharedPages: Sendable {
    /// What a replica that missed its own cache does next.
    public enum Entry: Sendable, Hashable {
        /// Another replica stored the page: its bytes, type, and age by Redis's clock.
        case page(body: ByteBuffer, contentType: String, ageMilliseconds: Int)
        /// This replica leads: it asks the upstream, then calls ``finish(_:status:body:contentType:lifeMilliseconds:on:)``.
        case lead(Flight)
        /// Another replica leads, for at most this much longer; wait for its message, then ``result(for:on:)``.
        case follow(lockMillisecondsLeft: Int)
    }

    /// A flight this replica leads: the question, its lock's token, and the invalidation generations it
    /// was fetched under.
    public typealias Flight = SharedFlight

    /// What a followed flight came to.
    public enum Result: Sendable, Hashable {
        /// A 200, stored: its bytes, type and age.
        case page(body: ByteBuffer, contentType: String, ageMilliseconds: Int)
        /// Any other answer, as the leader got it.
        case answer(status: Int, contentType: String, body: ByteBuffer)
    }

    private let client: RedisClient
    private let base: String
    /// How long a leader holds a question before another replica may lead it (a leader that died).
    private let lockMilliseconds: Int
    /// How long followers may read a non-200 answer.
    private let resultMilliseconds: Int

    /// The channel a leader announces a finished flight on (the message is the question's canonical query).
    public let flightsChannel: String
    /// The channel an invalidation is announced on (the message is the agent, empty for every page).
    public let invalidationsChannel: String

    /// Pages and flights under `prefix` for the credential whose tag is `credentialTag` (a short digest of
    /// it, never the credential).
    public init(
        client: RedisClient,
        prefix: String,
        credentialTag: String,
        lockMilliseconds: Int = 10_000,
        resultMilliseconds: Int = 5_000
    ) {
        self.client = client
        self.base = "\(prefix):{\(credentialTag)}:"
        self.lockMilliseconds = lockMilliseconds
        self.resultMilliseconds = resultMilliseconds
        self.flightsChannel = base + "flights" + Self.pageFormat
        self.invalidationsChannel = base + "invalidations"
    }

    private var generationsKey: RedisArgument { .string(base + "gen") }
    /// The format of the pages and answers kept under the page, lock and result keys and the flights channel:
    /// `2`, stored bytes that may be gzip (`1`, unnamed, was always JSON). A replica of an earlier version
    /// would serve gzip bytes as JSON, so during a rolling upgrade each version shares pages and flights only
    /// with its own; invalidations (the generations key, the invalidations channel) and budgets stay common.
    static let pageFormat = "2"

    private func pageKey(_ key: CacheKey) -> RedisArgument { .string(base + "page\(Self.pageFormat):" + key.query) }
    private func lockKey(_ key: CacheKey) -> RedisArgument { .string(base + "lock\(Self.pageFormat):" + key.query) }
    private func resultKey(_ key: CacheKey) -> RedisArgument {
        .string(base + "result\(Self.pageFormat):" + key.query)
    }

    /// Finds the page (younger than `freshMilliseconds`, when more than 0), or leads the question with
    /// `token`, or follows another replica, in one step.
    public func enter(
        _ key: CacheKey,
        token: String,
        freshMilliseconds: Int = 0,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Entry> {
        client.evaluate(
            SharedScripts.enterFlight,
            keys: [pageKey(key), generationsKey, lockKey(key), resultKey(key)],
            arguments: [
                .string(key.agentID ?? ""), .string(token), .integer(lockMilliseconds),
                .integer(max(0, freshMilliseconds)),
            ],
            on: eventLoop
        ).flatMapThrowing { reply in
            let parts = reply.array ?? []
            switch parts.first?.string {
            case "page" where parts.count == 4:
                return .page(
                    body: parts[1].bytes ?? ByteBuffer(),
                    contentType: parts[2].string ?? "",
                    ageMilliseconds: max(0, Int(parts[3].string ?? "") ?? 0)
                )
            case "lead" where parts.count == 3:
                return .lead(Flight(key: key, token: token, generations: parts.dropFirst().map { $0.string ?? "0" }))
            case "follow" where parts.count == 2:
                return .follow(lockMillisecondsLeft: max(0, Int(parts[1].string ?? "") ?? 0))
            default:
                throw RedisError.protocolError("unexpected reply to enterFlight: \(reply)")
            }
        }
    }

    /// Ends a flight this replica led: a 200 is stored for `lifeMilliseconds` (0: not stored) unless an
    /// invalidation came since the flight began; any other answer is kept briefly for the followers. The
    /// lock is released (if it is still this flight's) and the followers are told. `true`: a page was stored.
    public func finish(
        _ flight: Flight,
        status: Int,
        body: ByteBuffer,
        contentType: String,
        lifeMilliseconds: Int,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Bool> {
        let key = flight.key
        return client.evaluate(
            SharedScripts.finishFlight,
            keys: [pageKey(key), generationsKey, lockKey(key), resultKey(key)],
            arguments: [
                .string(key.agentID ?? ""), .string(flight.token), .string(flight.generations[0]),
                .string(flight.generations[1]), .integer(status), .bytes(body), .string(contentType),
                .integer(max(0, lifeMilliseconds)), .integer(resultMilliseconds), .string(flightsChannel),
                .string(key.query),
            ],
            on: eventLoop
        ).map { $0.int == 1 }
    }

    /// What a followed flight came to, once its leader has finished: the page, or the other answer, or
    /// `nil` (not finished yet, or its result has expired).
    public func result(
        for key: CacheKey,
        freshMilliseconds: Int = 0,
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<Result?> {
        client.evaluate(
            SharedScripts.readPage,
            keys: [pageKey(key), generationsKey],
            arguments: [.string(key.agentID ?? ""), .integer(max(0, freshMilliseconds))],
            on: eventLoop
        ).flatMap { page -> EventLoopFuture<Result?> in
            if let parts = page.array, parts.count == 3 {
                return eventLoop.makeSucceededFuture(
                    .page(
                        body: parts[0].bytes ?? ByteBuffer(),
                        contentType: parts[1].string ?? "",
                        ageMilliseconds: max(0, parts[2].int ?? 0)
                    )
                )
            }
            return self.client.send(["GET", self.resultKey(key)], on: eventLoop).map { reply in
                guard var bytes = reply.bytes, let head = bytes.readString(length: Self.headLength(of: bytes))
                else { return nil }
                bytes.moveReaderIndex(forwardBy: min(1, bytes.readableBytes))  // the newline
                let fields = head.split(separator: " ", maxSplits: 1)
                guard let status = fields.first.flatMap({ Int($0) }) else { return nil }
                return .answer(status: status, contentType: fields.count > 1 ? String(fields[1]) : "", body: bytes)
            }
        }
    }

    /// Gives up a flight this replica led without an answer: the lock is released (if it is still this
    /// flight's) and the followers are told to try again (their ``result(for:freshMilliseconds:on:)`` is
    /// an answer with status 0).
    public func abandon(_ flight: Flight, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        client.evaluate(
            SharedScripts.abandonFlight,
            keys: [lockKey(flight.key), resultKey(flight.key)],
            arguments: [
                .string(flight.token), .integer(resultMilliseconds), .string(flightsChannel), .string(flight.key.query),
            ],
            on: eventLoop
        ).map { _ in () }
    }

    /// Spends one upstream request from `team`'s bucket of `perMinute` (more than 0), shared by every
    /// replica.
    public func spend(team: String, perMinute: Int, on eventLoop: any EventLoop) -> EventLoopFuture<SharedBudget> {
        client.evaluate(
            SharedScripts.spendBudget,
            keys: [.string(base + "budget:" + team)],
            arguments: [.integer(max(1, perMinute))],
            on: eventLoop
        ).flatMapThrowing { reply in
            guard let parts = reply.array, parts.count == 3, let spent = parts[0].int, let wait = parts[1].int,
                let milliTokens = parts[2].int
            else {
                throw RedisError.protocolError("unexpected reply to spendBudget: \(reply)")
            }
            let left = Double(milliTokens) / 1000
            if spent == 1 { return SharedBudget(decision: .allowed, tokensLeft: left) }
            return SharedBudget(decision: .denied(retryAfterSeconds: max(1, (wait + 999) / 1000)), tokensLeft: left)
        }
    }

    /// Ends the generation of the pages a change to `agent`'s invocations makes wrong (every page for
    /// `nil`), on every replica, and announces it.
    public func invalidate(agent: String?, on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        client.evaluate(
            SharedScripts.invalidate,
            keys: [generationsKey],
            arguments: [.string(agent ?? ""), .string(invalidationsChannel), .string(agent ?? "")],
            on: eventLoop
        ).map { _ in () }
    }

    /// The length of a stored answer's first line (`status content-type`).
    private static func headLength(of bytes: ByteBuffer) -> Int {
        bytes.readableBytesView.firstIndex(of: UInt8(ascii: "\n")).map { $0 - bytes.readerIndex } ?? bytes.readableBytes
    }
}
