import Foundation

/// Durations counted in logarithmic buckets, eight to each doubling: what the custody graph
/// keeps per minute, so that an hour's percentiles come from sixty small rows merged, never from
/// the spans (docs/analysis.md, "The custody graph").
///
/// Rules:
/// - Bucket 0 holds durations under ``smallestMs`` (zero included); bucket `i ≥ 1` holds
///   `[smallestMs·2^((i−1)/8), smallestMs·2^(i/8))`. Durations past the last bucket count in it.
/// - A quantile is the nearest-rank one (the `⌈q·n⌉`-th smallest duration) reported as the
///   geometric middle of its bucket: within 4.4% of the exact value. The exact value and the
///   answer always fall in the same bucket.
/// - ``text`` is the stored form — `index:count` pairs, ascending, separated by spaces — the same
///   in SQLite and PostgreSQL.
public struct LatencyHistogram: Sendable, Hashable {
    /// Durations below this (ms) count in bucket 0.
    public static let smallestMs = 0.001
    /// Buckets per doubling.
    public static let bucketsPerDoubling = 8.0
    /// The last bucket: 2^(399/8) µs is about 30,000 years.
    public static let lastBucket = 400

    /// Count per bucket index, only the buckets that have any.
    public private(set) var counts: [Int: Int64] = [:]

    public init() {}

    /// How many durations it holds.
    public var count: Int64 { counts.values.reduce(0, +) }

    /// The bucket of a duration in milliseconds.
    public static func bucket(ofMs duration: Double) -> Int {
        guard duration.isFinite, duration >= smallestMs else { return 0 }
        let index = 1 + Int((bucketsPerDoubling * log2(duration / smallestMs)).rounded(.down))
        return min(max(index, 1), lastBucket)
    }

    /// The duration (ms) a bucket stands for: the geometric middle of its bounds, 0 for bucket 0.
    public static func representativeMs(ofBucket index: Int) -> Double {
        guard index > 0 else { return 0 }
        return smallestMs * exp2((Double(index) - 0.5) / bucketsPerDoubling)
    }

    public mutating func add(ms duration: Double) {
        counts[Self.bucket(ofMs: duration), default: 0] += 1
    }

    public mutating func merge(_ other: LatencyHistogram) {
        for (index, count) in other.counts { counts[index, default: 0] += count }
    }

    /// The nearest-rank `q` quantile (0 < q ≤ 1), in ms; nil when it holds nothing.
    public func quantileMs(_ q: Double) -> Double? {
        let total = count
        guard total > 0 else { return nil }
        let rank = max(1, Int64((q * Double(total)).rounded(.up)))
        var seen: Int64 = 0
        for index in counts.keys.sorted() {
            seen += counts[index] ?? 0
            if seen >= rank { return Self.representativeMs(ofBucket: index) }
        }
        return Self.representativeMs(ofBucket: counts.keys.max() ?? 0)
    }

    /// The stored form: `index:count` pairs, ascending, separated by single spaces.
    public var text: String {
        counts.keys.sorted().map { "\($0):\(counts[$0] ?? 0)" }.joined(separator: " ")
    }

    /// Reads ``text``; nil when it is not that form.
    public init?(text: String) {
        for pair in text.split(separator: " ") {
            let parts = pair.split(separator: ":")
            guard parts.count == 2, let index = Int(parts[0]), let count = Int64(parts[1]), (0...Self.lastBucket).contains(index), count > 0
            else { return nil }
            counts[index, default: 0] += count
        }
    }
}
