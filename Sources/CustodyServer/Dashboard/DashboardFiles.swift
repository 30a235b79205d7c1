import Foundation
import Hummingbird

/// Mission Control's files (`Dashboard/Assets`: `index.html` at `/`, modules and styles under
/// `/ui/`), served by Hummingbird's `FileMiddleware`: only for GET/HEAD of a path no route took,
/// `..` refused, content types by extension, `ETag` / `Last-Modified` with conditional requests,
/// and `Cache-Control: no-cache` so a browser revalidates instead of running stale modules. The
/// files are public (they hold no data); everything they show comes from the API, with the
/// user's token when one is needed.
enum DashboardFiles {
    /// Where the files are: the server target's resources.
    static var folder: String {
        (Bundle.module.resourceURL ?? Bundle.module.bundleURL).appendingPathComponent("Assets").path
    }

    static func middleware() -> Middleware {
        Middleware(
            files: FileMiddleware(
                folder,
                cacheControl: CacheControl([(MediaType(type: .any), [.noCache])]),
                searchForIndexHtml: true
            )
            .withAdditionalMediaType(MediaType(type: .application, subType: "javascript"), mappedToFileExtension: "js")
        )
    }

    /// `FileMiddleware`, with a path that tries to climb out of the folder answered like any
    /// other path that is not there: 404 `not_found` (FileMiddleware's bare 400 would otherwise
    /// pass for a malformed body).
    struct Middleware: RouterMiddleware {
        typealias Context = CustodyRequestContext
        let files: FileMiddleware<CustodyRequestContext, LocalFileSystem>

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            do {
                return try await files.handle(request, context: context, next: next)
            } catch let error as HTTPError where error.status == .badRequest {
                guard (request.uri.path.removingPercentEncoding ?? request.uri.path).contains("..") else { throw error }
                throw APIError.routeNotFound
            }
        }
    }

    /// Whether a request is for one of these files (which need no token).
    static func isFile(_ method: HTTPRequest.Method, path: String) -> Bool {
        (method == .get || method == .head) && (path == "/" || path == "/index.html" || path.hasPrefix("/ui/"))
    }
}
