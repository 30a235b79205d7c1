/// The rule every listener of the server keeps (HTTP, gRPC, OTLP): on an address beyond loopback
/// it serves only with bearer tokens configured, so the API is never exposed without
/// authentication (docs/operations.md "Ports"). Each listener's builder checks it and refuses to
/// build otherwise, whoever builds it (`custody serve`, a test, an embedding program).
public enum ListenerExposure {
    /// A listener that would expose the API without authentication.
    public struct Refusal: Error, CustomStringConvertible {
        public var host: String
        public var description: String {
            "listening on \(host) would expose the API without authentication: set bearer tokens (CUSTODY_TOKENS or \"tokens\" in the config file), or bind to 127.0.0.1"
        }
    }

    /// Whether `host` is a loopback address (or `localhost`).
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    /// Throws ``Refusal`` for a host beyond loopback with no tokens.
    public static func check(host: String, tokens: [String: AccessRole]) throws(Refusal) {
        guard isLoopback(host) || !tokens.isEmpty else { throw Refusal(host: host) }
    }
}
