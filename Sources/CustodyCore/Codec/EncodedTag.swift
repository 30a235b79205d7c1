/// An enum stored as a one-byte tag in the event encoding. Each case's tag is written out in its
/// type (never derived from the order of cases, which would change the encoding when a case is
/// added in the middle).
protocol EncodedTag: CaseIterable {
    var tag: UInt8 { get }
}

extension EncodedTag {
    init?(tag: UInt8) {
        guard let value = Self.allCases.first(where: { $0.tag == tag }) else { return nil }
        self = value
    }
}
