import ArgumentParser
import CustodyCore

extension ServeCommand {
    /// The config file's `"retention"` object: `max_age` and `max_bytes`, each a number (seconds,
    /// bytes) or a string with a unit (`"7d"`, `"50GiB"`), and `interval` (seconds).
    struct FileRetention: Decodable {
        var maxAge: NumberOrText?
        var maxBytes: NumberOrText?
        var interval: Double?
    }

    /// A config value given as a number or as text.
    struct NumberOrText: Decodable {
        var text: String

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int64.self) {
                text = String(number)
            } else {
                text = try container.decode(String.self)
            }
        }
    }

    /// Retention from the file, the environment and the flags (flags strongest).
    func retention(file: FileRetention?) throws -> RetentionPolicy {
        let environment = ProcessEnvironment.self
        var policy = RetentionPolicy()
        /// `text` through `parse`, nil when absent; an error names where the value came from.
        func parsed<T>(_ text: String?, _ origin: String, _ parse: (String) throws(CoreError) -> T) throws -> T? {
            guard let text else { return nil }
            do {
                return try parse(text)
            } catch {
                throw ValidationError("\(origin): \(error.message)")
            }
        }
        func age(_ text: String?, _ origin: String) throws {
            policy.maxAge = try parsed(text, origin, RetentionPolicy.age(parsing:)) ?? policy.maxAge
        }
        func bytes(_ text: String?, _ origin: String) throws {
            policy.maxBytes = try parsed(text, origin, RetentionPolicy.bytes(parsing:)) ?? policy.maxBytes
        }
        var interval = file?.interval
        try age(file?.maxAge?.text, "retention.max_age in the config file")
        try bytes(file?.maxBytes?.text, "retention.max_bytes in the config file")
        try age(environment.value("CUSTODY_RETENTION_MAX_AGE"), "CUSTODY_RETENTION_MAX_AGE")
        try bytes(environment.value("CUSTODY_RETENTION_MAX_BYTES"), "CUSTODY_RETENTION_MAX_BYTES")
        if let value = environment.value("CUSTODY_RETENTION_INTERVAL") {
            guard let seconds = Double(value) else { throw ValidationError("CUSTODY_RETENTION_INTERVAL must be a number of seconds") }
            interval = seconds
        }
        try age(retentionMaxAge, "--retention-max-age")
        try bytes(retentionMaxBytes, "--retention-max-bytes")
        if let retentionInterval { interval = retentionInterval }
        if let interval {
            guard interval >= 0.1 && interval <= 86_400 else { throw ValidationError("the retention interval must be 0.1–86400 seconds") }
            policy.checkInterval = .milliseconds(Int64(interval * 1000))
        }
        policy.stopAt = environment.value("CUSTODY_RETENTION_STOP_AT")
        return policy
    }
}
