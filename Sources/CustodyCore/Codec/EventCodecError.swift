/// Why bytes are not an encoded event. The decoder throws this for any malformed input; it
/// never traps, and never reads out of bounds.
public struct EventCodecError: Error, Hashable, Sendable, CustomStringConvertible {
    public var reason: String
    /// Byte offset in the record where decoding stopped.
    public var offset: Int

    init(_ reason: String, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String { "not a valid event at byte \(offset): \(reason)" }
}
