import CustodyCore
import Foundation

/// `custody bench ingest --in-process --compare-chain` (docs/benchmarks.md, P13): the same
/// workload with the hash chain and signed checkpoints off and on, in one run.
extension BenchCommand.Ingest {
    struct ChainComparison: Codable {
        var off: [IngestReport]
        var on: [IngestReport]
        /// Medians of events/s.
        var medianOff: Double
        var medianOn: Double
        /// on / off: 1 is no cost, 0.9 is 10% fewer events/s.
        var ratio: Double
        /// The same for the projector's events/s, with --project.
        var projectorMedianOff: Double?
        var projectorMedianOn: Double?
        var projectorRatio: Double?
    }

    /// Runs off and on alternately, `rounds` times each, the order swapped every round (off, on;
    /// on, off; …) so that a machine getting slower or faster during the run weighs on both. Each
    /// run writes a new log in its own directory under `directory`, removed after it unless
    /// `keep`.
    func compareChains(in directory: String, keep: Bool) async throws {
        var off: [IngestReport] = []
        var on: [IngestReport] = []
        for round in 0..<rounds {
            for chained in round % 2 == 0 ? [false, true] : [true, false] {
                let path = (directory as NSString).appendingPathComponent("round-\(round + 1)-chain-\(chained ? "on" : "off")")
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                let report = try await awaitingCleanErrors { try await measure(directory: path, chain: chained) }
                if !keep { try? FileManager.default.removeItem(atPath: path) }
                if !json { print(report.text + "\n") }
                if chained { on.append(report) } else { off.append(report) }
            }
        }
        func median(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        }
        let medianOff = median(off.map(\.eventsPerSecond))
        let medianOn = median(on.map(\.eventsPerSecond))
        var comparison = ChainComparison(off: off, on: on, medianOff: medianOff, medianOn: medianOn, ratio: medianOn / medianOff)
        if project {
            let projectorOff = median(off.compactMap(\.projections?.eventsPerSecond))
            let projectorOn = median(on.compactMap(\.projections?.eventsPerSecond))
            comparison.projectorMedianOff = projectorOff
            comparison.projectorMedianOn = projectorOn
            comparison.projectorRatio = projectorOn / projectorOff
        }
        if json {
            print(try encodeJSON(comparison))
            return
        }
        func list(_ reports: [IngestReport]) -> String { reports.map { String(format: "%.0f", $0.eventsPerSecond) }.joined(separator: " · ") }
        print("chain and checkpoints off: \(list(off)) events/s")
        print("chain and checkpoints on:  \(list(on)) events/s (\(on.map { String($0.checkpoints) }.joined(separator: " · ")) checkpoints)")
        print(
            "on / off: \(String(format: "%.3f", comparison.ratio))× the events/s (medians \(String(format: "%.0f", medianOn)) vs \(String(format: "%.0f", medianOff)))"
        )
        if let projectorOn = comparison.projectorMedianOn, let projectorOff = comparison.projectorMedianOff, let ratio = comparison.projectorRatio {
            print(
                "projector on / off: \(String(format: "%.3f", ratio))× the events/s (medians \(String(format: "%.0f", projectorOn)) vs \(String(format: "%.0f", projectorOff))); worst lag \(on.compactMap { $0.projections.map { String(format: "%.2f s", $0.worstLagSeconds) } }.joined(separator: " · ")) on, \(off.compactMap { $0.projections.map { String(format: "%.2f s", $0.worstLagSeconds) } }.joined(separator: " · ")) off"
            )
        }
    }
}
