/// upsertFile's request (docs/api.md "GitHub"): a file's whole new content, written to `branch` (the
/// repository's default branch when nil), creating the file or replacing it.
public struct GitHubFileChange: Sendable, Hashable {
    public var path: String?
    public var content: String?
    public var message: String?
    public var owner: String?
    public var repo: String?
    public var branch: String?

    public init(path: String?, content: String?, message: String?, owner: String? = nil, repo: String? = nil, branch: String? = nil) {
        self.path = path
        self.content = content
        self.message = message
        self.owner = owner
        self.repo = repo
        self.branch = branch
    }
}

/// openPR's request: a pull request from `head` (a branch, or `owner:branch` across forks) into
/// `base`.
public struct GitHubPullRequestDraft: Sendable, Hashable {
    public var title: String?
    public var head: String?
    public var base: String?
    public var body: String?
    public var owner: String?
    public var repo: String?

    public init(title: String?, head: String?, base: String?, body: String? = nil, owner: String? = nil, repo: String? = nil) {
        self.title = title
        self.head = head
        self.base = base
        self.body = body
        self.owner = owner
        self.repo = repo
    }
}

/// createIssue's request.
public struct GitHubIssueDraft: Sendable, Hashable {
    public var title: String?
    public var body: String?
    public var labels: [String]?
    public var owner: String?
    public var repo: String?

    public init(title: String?, body: String? = nil, labels: [String]? = nil, owner: String? = nil, repo: String? = nil) {
        self.title = title
        self.body = body
        self.labels = labels
        self.owner = owner
        self.repo = repo
    }
}

/// The checks of GitHubOps' fields, with GitHub's own limits where it has them, so that a request
/// GitHub would refuse for its shape is refused at once (422, naming the field) rather than
/// after a trip through the outbox.
enum GitHubFieldRules {
    /// Largest `content` of upsertFile (GitHub's contents API serves files up to 1 MB).
    static let maximumContentBytes = 1 << 20
    /// Largest issue or pull request body (GitHub: 65,536 characters).
    static let maximumBodyCharacters = 65_536
    /// Largest title (GitHub: 256 characters).
    static let maximumTitleCharacters = 256

    /// `owner`: a GitHub account name (1–39 of `[A-Za-z0-9-]`, not starting with `-`).
    static func owner(_ value: String?, default fallback: String?) throws(CoreError) -> String {
        guard let value = value ?? fallback else {
            throw CoreError.invalidArgument("owner", "is required (no GITHUB_OWNER is configured)")
        }
        guard (1...39).contains(value.utf8.count), value.first != "-", value.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") })
        else { throw CoreError.invalidArgument("owner", "must be a GitHub account name (1–39 letters, digits or '-')") }
        return value
    }

    /// `repo`: a repository name (1–100 of `[A-Za-z0-9._-]`, not `.` or `..`).
    static func repository(_ value: String?, default fallback: String?) throws(CoreError) -> String {
        guard let value = value ?? fallback else {
            throw CoreError.invalidArgument("repo", "is required (no GITHUB_REPO is configured)")
        }
        guard (1...100).contains(value.utf8.count), value != ".", value != "..",
            value.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") })
        else { throw CoreError.invalidArgument("repo", "must be a repository name (1–100 letters, digits, '.', '_' or '-')") }
        return value
    }

    /// A file path in the repository: 1–1024 bytes of `/`-separated segments, none empty, `.` or
    /// `..`, no control characters, no leading `/`.
    static func path(_ value: String?) throws(CoreError) -> String {
        guard let value else { throw CoreError.invalidArgument("path", "is required") }
        _ = try SpanInput.check(value, "path", maximum: 1024)
        let segments = value.split(separator: "/", omittingEmptySubsequences: false)
        guard segments.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw CoreError.invalidArgument("path", "must be a relative path of non-empty segments, without '.' or '..'")
        }
        return value
    }

    /// A branch name (git's rules for ref names, the parts that matter here); `allowsOwner` lets
    /// a pull request's `head` be `owner:branch`.
    static func branch(_ value: String?, _ field: String, required: Bool, allowsOwner: Bool = false) throws(CoreError) -> String? {
        guard let value else {
            if required { throw CoreError.invalidArgument(field, "is required") }
            return nil
        }
        _ = try SpanInput.check(value, field, maximum: 255)
        var name = Substring(value)
        if allowsOwner, let colon = value.firstIndex(of: ":") {
            _ = try owner(String(value[..<colon]), default: nil)
            name = value[value.index(after: colon)...]
        }
        let forbidden: Set<Character> = [" ", "~", "^", ":", "?", "*", "[", "\\"]
        guard !name.isEmpty, !name.hasPrefix("-"), !name.hasPrefix("/"), !name.hasSuffix("/"), !name.hasSuffix("."),
            !name.hasSuffix(".lock"), !name.contains(".."), !name.contains("@{"), !name.contains("//"),
            !name.contains(where: { forbidden.contains($0) })
        else { throw CoreError.invalidArgument(field, "is not a valid branch name") }
        return value
    }

    static func title(_ value: String?) throws(CoreError) -> String {
        guard let value else { throw CoreError.invalidArgument("title", "is required") }
        guard !value.isEmpty, value.count <= maximumTitleCharacters, !value.contains(where: { $0.isNewline }) else {
            throw CoreError.invalidArgument("title", "must be 1–\(maximumTitleCharacters) characters on one line")
        }
        return value
    }

    static func body(_ value: String?) throws(CoreError) -> String? {
        guard let value else { return nil }
        guard value.utf8.count <= maximumBodyCharacters || value.count <= maximumBodyCharacters else {
            throw CoreError.invalidArgument("body", "must be at most \(maximumBodyCharacters) characters")
        }
        return value
    }

    static func labels(_ value: [String]?) throws(CoreError) -> [String]? {
        guard let value else { return nil }
        guard value.count <= 100 else { throw CoreError.invalidArgument("labels", "must hold at most 100 labels") }
        for (index, label) in value.enumerated() {
            _ = try SpanInput.check(label, "labels[\(index)]", maximum: 50)
        }
        return value
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }
}
