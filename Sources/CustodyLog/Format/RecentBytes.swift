import NIOCore

/// The last `capacity` bytes appended to it, in order: what the writer keeps of the records it
/// wrote, to make the next segment's dictionary from (``LZ4Dictionary``).
struct RecentBytes: Sendable {
    let capacity: Int
    private var ring: [UInt8]
    /// Where the next byte goes.
    private var position = 0
    /// How many bytes it holds (at most `capacity`).
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        ring = [UInt8](repeating: 0, count: capacity)
    }

    /// Whether it holds `capacity` bytes.
    var isFull: Bool { count == capacity }

    /// Appends `bytes`; of more than `capacity`, only the last `capacity` are kept.
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        var source = bytes
        if source.count > capacity { source = UnsafeRawBufferPointer(rebasing: source[(source.count - capacity)...]) }
        let capacity = capacity
        var position = position
        ring.withUnsafeMutableBytes { ring in
            var remaining = source
            while !remaining.isEmpty {
                let run = min(remaining.count, capacity - position)
                UnsafeMutableRawBufferPointer(rebasing: ring[position..<(position + run)]).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: remaining[0..<run])
                )
                remaining = UnsafeRawBufferPointer(rebasing: remaining[run...])
                position = (position + run) % capacity
            }
        }
        self.position = position
        count = min(capacity, count + source.count)
    }

    mutating func append(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { append($0) }
    }

    /// The bytes it holds, oldest first.
    var bytes: [UInt8] {
        guard count == capacity else { return Array(ring[0..<count]) }
        return Array(ring[position...] + ring[..<position])
    }
}

/// Bytes written per second, roughly: counted in one-second windows on the log's clock. The log
/// is quiet while the current window and the one before it each stay under a limit.
struct WriteRate: Sendable {
    private var windowStart: Duration?
    private var current: Int64 = 0
    private var previous: Int64 = 0

    /// Notes `bytes` written at `now`.
    mutating func note(_ bytes: Int64, at now: Duration) {
        advance(to: now)
        current += bytes
    }

    /// Whether fewer than `limit` bytes were written in the current window and in the one before.
    mutating func isQuiet(below limit: Int64, at now: Duration) -> Bool {
        advance(to: now)
        return current < limit && previous < limit
    }

    private mutating func advance(to now: Duration) {
        guard let start = windowStart else {
            windowStart = now
            return
        }
        let elapsed = now - start
        if elapsed >= .seconds(2) {
            (previous, current, windowStart) = (0, 0, now)
        } else if elapsed >= .seconds(1) {
            (previous, current, windowStart) = (current, 0, start + .seconds(1))
        }
    }
}
