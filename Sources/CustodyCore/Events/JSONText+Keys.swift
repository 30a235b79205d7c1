import NIOCore

extension JSONText {
    /// Whether the JSON object has `key` at its top level, found by scanning the bytes (string
    /// escapes and nesting respected) without parsing the whole value: docs/api.md makes a span an
    /// error span when `details.error` is present, and this runs for every span projected.
    public func hasTopLevelKey(_ key: String) -> Bool {
        let wanted = Array(key.utf8)
        return bytes.withUnsafeReadableBytes { raw -> Bool in
            var depth = 0
            var index = 0
            var expectingKey = false
            while index < raw.count {
                let byte = raw[index]
                switch byte {
                case UInt8(ascii: "{"):
                    depth += 1
                    expectingKey = depth == 1
                case UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                case UInt8(ascii: ","):
                    expectingKey = depth == 1
                case UInt8(ascii: "\""):
                    // A string: find its end, skipping escaped characters.
                    let start = index + 1
                    var end = start
                    var plain = true
                    while end < raw.count && raw[end] != UInt8(ascii: "\"") {
                        if raw[end] == UInt8(ascii: "\\") {
                            plain = false
                            end += 1
                        }
                        end += 1
                    }
                    if expectingKey && depth == 1 && plain && end - start == wanted.count
                        && wanted.withUnsafeBytes({ $0.elementsEqual(UnsafeRawBufferPointer(rebasing: raw[start..<end])) })
                    {
                        return true
                    }
                    expectingKey = false
                    index = end
                default:
                    break
                }
                index += 1
            }
            return false
        }
    }
}
