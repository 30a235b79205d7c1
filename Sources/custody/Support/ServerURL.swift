import ArgumentParser
import CustodyClient
import Foundation

extension CustodyClient {
    /// The client a command uses: `--server`, else `CUSTODY_SERVER`, else the default; the token
    /// in `CUSTODY_TOKEN` when set.
    static func command(server: String?, timeout: Duration = .seconds(30)) -> CustodyClient {
        CustodyClient(baseURL: ServerURL.resolve(server), token: ProcessEnvironment.value("CUSTODY_TOKEN"), timeout: timeout)
    }
}

/// The server a client command talks to: the flag, else `CUSTODY_SERVER`, else the default.
enum ServerURL {
    static func resolve(_ flag: String?) -> String {
        let url = flag ?? ProcessEnvironment.value("CUSTODY_SERVER") ?? "http://127.0.0.1:8787"
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }
}
