#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The `custody` executable beside the test bundle (built by `swift build` before the tests), for
/// tests that run it as a child process: a real `kill -9`, the commands a person types.
public enum CustodyExecutable {
    public static var path: String {
        let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var candidates = [bundle.deletingLastPathComponent().appendingPathComponent("custody").path]
        if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            candidates.append(URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent("custody").path)
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }
}
