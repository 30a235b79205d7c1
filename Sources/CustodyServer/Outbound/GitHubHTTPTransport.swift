import AsyncHTTPClient
import CustodyCore
import CustodyLog
import NIOCore
import NIOHTTP1

/// The GitHub outbox's calls over HTTP with async-http-client: GitHub's REST API at
/// `https://api.github.com`, or a GitHub Enterprise / GitHub-compatible server's base URL
/// (`https://github.example.com/api/v3`).
///
/// It is the only holder of the token, which it sends in the `Authorization` header and nowhere
/// else; whatever it returns (bodies, header values, error descriptions) has every occurrence of
/// the token replaced by `[REDACTED]`, so even a server that echoes it back cannot put it in the
/// log.
public struct GitHubHTTPTransport: GitHubTransport {
    /// The API's base URL, without a trailing `/`.
    public let baseURL: String
    let token: GitHubToken
    /// How long one call may take, from connecting to the last byte of the answer.
    public let timeout: Duration
    let http: HTTPClient
    /// The largest answer read (a list of 100 issues with long bodies fits).
    static let maximumAnswerBytes = 16 << 20

    public init(baseURL: String, token: GitHubToken, timeout: Duration = .seconds(30), httpClient: HTTPClient = .shared) throws {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        guard base.hasPrefix("https://") || base.hasPrefix("http://"), base.count > "https://".count else {
            throw GitHubConfigurationError("the GitHub API URL must be an http:// or https:// URL, not \(baseURL)")
        }
        self.baseURL = base
        self.token = token
        self.timeout = timeout
        self.http = httpClient
    }

    public func send(_ request: GitHubRequest) async throws(GitHubTransportError) -> GitHubResponse {
        var url = baseURL + request.path
        if !request.query.isEmpty {
            url +=
                "?"
                + request.query.map { "\(GitHubRequest.percentEncoded($0.name))=\(GitHubRequest.percentEncoded($0.value))" }.joined(separator: "&")
        }
        var call = HTTPClientRequest(url: url)
        call.method = HTTPMethod(rawValue: request.method)
        call.headers.add(name: "Accept", value: "application/vnd.github+json")
        call.headers.add(name: "X-GitHub-Api-Version", value: "2022-11-28")
        call.headers.add(name: "User-Agent", value: "custody")
        call.headers.add(name: "Authorization", value: "Bearer \(token.value)")
        if let body = request.body {
            call.headers.add(name: "Content-Type", value: "application/json")
            call.body = .bytes(body.jsonText.bytes)
        }
        do {
            let response = try await http.execute(call, timeout: .nanoseconds(Int64(timeout.inSeconds * 1e9)))
            let body = try await response.body.collect(upTo: Self.maximumAnswerBytes)
            var headers: [String: String] = [:]
            for name in ["retry-after", "x-ratelimit-remaining", "x-ratelimit-reset", "x-github-request-id"] {
                if let value = response.headers.first(name: name) { headers[name] = redact(value) }
            }
            return GitHubResponse(status: Int(response.status.code), headers: headers, body: redact(body))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            throw GitHubTransportError("no answer from \(baseURL) within \(timeout)", timedOut: true)
        } catch {
            throw GitHubTransportError(redact("no answer from \(baseURL): \(error)"))
        }
    }

    private func redact(_ text: String) -> String {
        text.contains(token.value) ? text.replacing(token.value, with: "[REDACTED]") : text
    }

    private func redact(_ bytes: ByteBuffer) -> ByteBuffer {
        let text = String(buffer: bytes)
        return text.contains(token.value) ? ByteBuffer(string: redact(text)) : bytes
    }
}

/// The server's GitHub settings: where GitHub is, the credential, the default repository. Made
/// from `GITHUB_TOKEN` (or a token file), `GITHUB_API_URL`, `GITHUB_OWNER`, `GITHUB_REPO` and the
/// config file by `custody serve`.
public struct GitHubConfiguration: Sendable {
    public var apiURL = "https://api.github.com"
    public var token: GitHubToken
    public var owner: String?
    public var repository: String?
    /// How long one call to GitHub may take.
    public var timeout: Duration = .seconds(30)
    public var retry = GitHubRetryPolicy()

    public init(token: GitHubToken, apiURL: String = "https://api.github.com", owner: String? = nil, repository: String? = nil) {
        self.token = token
        self.apiURL = apiURL
        self.owner = owner
        self.repository = repository
    }

    /// The core's settings, with the HTTP transport.
    public func settings(httpClient: HTTPClient = .shared) throws -> GitHubSettings {
        var settings = GitHubSettings(
            transport: try GitHubHTTPTransport(baseURL: apiURL, token: token, timeout: timeout, httpClient: httpClient),
            defaultOwner: owner,
            defaultRepository: repository
        )
        settings.retry = retry
        return settings
    }
}
