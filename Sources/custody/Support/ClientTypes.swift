import CustodyClient

/// A span as the client decodes a server's answer (`CustodyClient`'s `SpanRecord`), named apart
/// from the core's `SpanRecord` for files that import both.
typealias ShownSpan = SpanRecord
