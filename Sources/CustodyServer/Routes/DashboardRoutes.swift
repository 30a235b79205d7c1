import Hummingbird
import NIOCore

/// `GET /`: the dashboard's entry page. Not traced.
struct DashboardRoutes {
    func register(on router: Router<CustodyRequestContext>) {
        router.get("/") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-cache"],
                body: .init(byteBuffer: ByteBuffer(string: Self.page))
            )
        }
    }

    static let page = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>Custody</title>
        <style>body{font:15px/1.5 system-ui,sans-serif;max-width:48rem;margin:3rem auto;padding:0 1rem;color:#1d2330}
        code{background:#eef1f6;padding:.1rem .3rem;border-radius:3px}</style></head>
        <body><h1>Custody</h1>
        <p>The server is running. API: <code>/api/logs</code>, <code>/api/tasks</code>, <code>/api/traces</code>,
        live stream <code>/api/traces/live</code>, OpenTelemetry (OTLP/HTTP) <code>/v1/traces</code>,
        <a href="/metrics">/metrics</a>, <a href="/api/admin/stats">/api/admin/stats</a>.</p>
        </body></html>
        """
}
