#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A GitHub credential. It prints as `[REDACTED]` however it is printed (string interpolation,
/// `dump`, a logger's metadata), so a slip cannot put it in a log line; only
/// ``GitHubHTTPTransport`` reads its value, for the `Authorization` header.
public struct GitHubToken: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let value: String

    /// A token as given (`GITHUB_TOKEN`); nil when it is empty once trimmed.
    public init?(_ value: String) {
        let trimmed = String(value.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        guard !trimmed.isEmpty, !trimmed.contains(where: { $0.isNewline || $0 == " " }) else { return nil }
        self.value = trimmed
    }

    /// The token in the file at `path` (its only content; surrounding blanks and the final newline
    /// are ignored).
    public init(contentsOfFile path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw GitHubConfigurationError("the GitHub token file \(path) cannot be read")
        }
        guard let token = GitHubToken(text) else { throw GitHubConfigurationError("the GitHub token file \(path) holds no token") }
        self = token
    }

    public var description: String { "[REDACTED]" }
    public var debugDescription: String { "[REDACTED]" }
    public var customMirror: Mirror { Mirror(self, children: []) }
}

/// A GitHub setting that cannot be used, in one sentence (never with the token in it).
public struct GitHubConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }
}
