/// What the GitHub outbox needs: how to reach GitHub, the repository used when a request names
/// none, and how to retry. A runtime without settings answers every GitHub operation with
/// `github_not_configured`.
public struct GitHubSettings: Sendable {
    public var transport: any GitHubTransport
    /// `GITHUB_OWNER`: the owner used when a request has no `owner`.
    public var defaultOwner: String?
    /// `GITHUB_REPO`: the repository used when a request has no `repo`.
    public var defaultRepository: String?
    public var retry = GitHubRetryPolicy()
    /// The longest `?wait=true` waits for an operation to finish (docs/api.md: 30 s).
    public var waitLimit: Duration = .seconds(30)

    public init(transport: any GitHubTransport, defaultOwner: String? = nil, defaultRepository: String? = nil) {
        self.transport = transport
        self.defaultOwner = defaultOwner
        self.defaultRepository = defaultRepository
    }
}

/// When a transient failure is tried again: capped exponential backoff with jitter, and GitHub's
/// own rate-limit instructions (`Retry-After`, `x-ratelimit-reset`) when it gives them.
public struct GitHubRetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included; the last transient failure then fails the operation.
    public var maximumAttempts: UInt32 = 8
    /// The delay after the first failure; it doubles after each one…
    public var initialDelay: Duration = .seconds(1)
    /// …up to this.
    public var maximumDelay: Duration = .seconds(60)
    /// The wait after a secondary rate limit that says nothing of when to come back (GitHub's
    /// guidance: at least a minute).
    public var rateLimitDelay: Duration = .seconds(60)

    public init() {}

    /// The delay before attempt `attempt + 1` after `attempt` failed: half of the capped
    /// exponential delay plus a random part of the other half, so that many waiting operations do
    /// not come back at once.
    func backoff(after attempt: UInt32, random: Double = Double.random(in: 0..<1)) -> Duration {
        let exponent = min(Int(attempt) - 1, 30)
        let capped = min(initialDelay * (1 << max(exponent, 0)), maximumDelay)
        return capped / 2 + capped / 2 * random
    }
}
