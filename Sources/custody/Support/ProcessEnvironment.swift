#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads environment variables (flags override them; they override the config file).
enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        let value = String(cString: raw)
        return value.isEmpty ? nil : value
    }

    /// `Bearer <CUSTODY_TOKEN>`, for a command's own requests to a server; nil when unset.
    static var authorization: String? { value("CUSTODY_TOKEN").map { "Bearer \($0)" } }

    static var standardOutputIsTerminal: Bool { isatty(STDOUT_FILENO) != 0 }
    static var standardErrorIsTerminal: Bool { isatty(STDERR_FILENO) != 0 }
}

/// Writes to standard error, for progress and diagnostics (standard output carries results).
func printError(_ text: String, terminator: String = "\n") {
    writeAll(STDERR_FILENO, text + terminator)
}

/// Writes a string with `write(2)`; a line of at most PIPE_BUF bytes reaches a pipe whole.
func writeAll(_ descriptor: Int32, _ text: String) {
    var bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 {
            if n < 0 && errno == EINTR { continue }
            return
        }
        offset += n
    }
    bytes.removeAll()
}
