/// How much a follow-up matters (docs/api.md).
public enum FollowupImpact: String, Sendable, Hashable, CaseIterable, EncodedTag {
    case low
    case medium
    case high
    case critical

    var tag: UInt8 {
        switch self {
        case .low: 1
        case .medium: 2
        case .high: 3
        case .critical: 4
        }
    }

}

/// `followup.submitted`
public struct FollowupSubmitted: Sendable, Hashable {
    public var id: String
    public var orderId: String
    public var type: String
    public var note: String
    public var impact: FollowupImpact

    public init(id: String, orderId: String, type: String, note: String, impact: FollowupImpact) {
        self.id = id
        self.orderId = orderId
        self.type = type
        self.note = note
        self.impact = impact
    }
}

/// `delivery.finalized`: a revision of an order's delivery report.
public struct DeliveryFinalized: Sendable, Hashable {
    public var orderId: String
    public var revision: UInt64
    /// The report (a JSON object), as computed from one log position.
    public var report: JSONText

    public init(orderId: String, revision: UInt64, report: JSONText) {
        self.orderId = orderId
        self.revision = revision
        self.report = report
    }
}
