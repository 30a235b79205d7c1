/// Parses ``TraceQuery`` text by recursive descent over its tokens. Precedence, loosest first:
/// spansets `||`, `&&`, then the structural `>` and `>>` (all left-associative); inside braces
/// `||`, `&&`, then `!`. Every error names the column where parsing stopped and what could have
/// come there.
struct TraceQueryParser {
    private let tokens: [Token]
    private var position = 0

    /// Deeper nesting than this is refused: a query is a line a person writes.
    static let maximumDepth = 64

    init(_ text: String) {
        var lexer = TraceQueryLexer(text)
        tokens = lexer.tokens()
    }

    mutating func parseQuery() throws(TraceQueryError) -> TraceQuery {
        guard tokens.first?.kind != .end else { throw error("a spanset such as { source = \"x\" }", at: tokens[0]) }
        let spansets = try parseSpansets(depth: 0)
        var filters: [AggregateFilter] = []
        var metric: MetricFunction?
        while current.kind == .pipe {
            if metric != nil { throw error("the end of the query: a metric function comes last", at: current) }
            advance()
            guard case .identifier(let name) = current.kind else {
                throw error(
                    "an aggregate (count, avg, max, min, sum) or a metric function (rate, count_over_time, quantile_over_time, avg_over_time)",
                    at: current
                )
            }
            if let aggregate = AggregateFilter.Aggregate(rawValue: name) {
                filters.append(try parseAggregateFilter(aggregate))
            } else if Self.metricNames.contains(name) {
                metric = try parseMetric(name)
            } else {
                throw error(
                    "an aggregate (count, avg, max, min, sum) or a metric function (rate, count_over_time, quantile_over_time, avg_over_time)",
                    at: current
                )
            }
        }
        guard current.kind == .end else {
            throw error(filters.isEmpty && metric == nil ? "&&, ||, >, >>, | or the end of the query" : "| or the end of the query", at: current)
        }
        return TraceQuery(spansets: spansets, filters: filters, metric: metric)
    }

    // MARK: Spansets

    private mutating func parseSpansets(depth: Int) throws(TraceQueryError) -> SpansetExpression {
        var left = try parseSpansetConjunction(depth: depth)
        while current.kind == .or {
            advance()
            left = .or(left, try parseSpansetConjunction(depth: depth))
        }
        return left
    }

    private mutating func parseSpansetConjunction(depth: Int) throws(TraceQueryError) -> SpansetExpression {
        var left = try parseStructural(depth: depth)
        while current.kind == .and {
            advance()
            left = .and(left, try parseStructural(depth: depth))
        }
        return left
    }

    private mutating func parseStructural(depth: Int) throws(TraceQueryError) -> SpansetExpression {
        var left = try parseSpansetTerm(depth: depth)
        while true {
            if current.kind == .greater {
                advance()
                left = .child(left, try parseSpansetTerm(depth: depth))
            } else if current.kind == .descendant {
                advance()
                left = .descendant(left, try parseSpansetTerm(depth: depth))
            } else {
                return left
            }
        }
    }

    private mutating func parseSpansetTerm(depth: Int) throws(TraceQueryError) -> SpansetExpression {
        guard depth < Self.maximumDepth else { throw error("less nesting (at most \(Self.maximumDepth) levels)", at: current) }
        switch current.kind {
        case .openBrace:
            advance()
            if current.kind == .closeBrace {
                advance()
                return .spanset(nil)
            }
            let condition = try parseCondition(depth: depth + 1)
            guard current.kind == .closeBrace else { throw error("&&, || or }", at: current) }
            advance()
            return .spanset(condition)
        case .openParenthesis:
            advance()
            let inner = try parseSpansets(depth: depth + 1)
            guard current.kind == .closeParenthesis else { throw error("&&, ||, >, >> or )", at: current) }
            advance()
            return inner
        default:
            throw error("a spanset such as { source = \"x\" } or (", at: current)
        }
    }

    // MARK: Span conditions

    private mutating func parseCondition(depth: Int) throws(TraceQueryError) -> SpanCondition {
        var left = try parseConditionConjunction(depth: depth)
        while current.kind == .or {
            advance()
            left = .or(left, try parseConditionConjunction(depth: depth))
        }
        return left
    }

    private mutating func parseConditionConjunction(depth: Int) throws(TraceQueryError) -> SpanCondition {
        var left = try parseConditionTerm(depth: depth)
        while current.kind == .and {
            advance()
            left = .and(left, try parseConditionTerm(depth: depth))
        }
        return left
    }

    private mutating func parseConditionTerm(depth: Int) throws(TraceQueryError) -> SpanCondition {
        guard depth < Self.maximumDepth else { throw error("less nesting (at most \(Self.maximumDepth) levels)", at: current) }
        switch current.kind {
        case .not:
            advance()
            return .not(try parseConditionTerm(depth: depth + 1))
        case .openParenthesis:
            advance()
            let inner = try parseCondition(depth: depth + 1)
            guard current.kind == .closeParenthesis else { throw error("&&, || or )", at: current) }
            advance()
            return inner
        default:
            return try parseComparison()
        }
    }

    private static let fieldList =
        "a field (source, stage, operation, trace_id, span_id, parent_span_id, task_uuid, duration, status) or .path.in.details"

    private mutating func parseComparison() throws(TraceQueryError) -> SpanCondition {
        let fieldToken = current
        let field: SpanField
        switch fieldToken.kind {
        case .identifier(let name):
            guard let named = SpanField.named[name] else { throw error(Self.fieldList, at: fieldToken) }
            field = named
        case .attribute(let path):
            field = .detail(path)
        default:
            throw error(Self.fieldList, at: fieldToken)
        }
        advance()
        guard let comparison = current.kind.comparison else { throw error("a comparison (=, !=, <, <=, >, >=, =~, !~)", at: current) }
        let operatorToken = current
        advance()
        let valueToken = current
        let value = try parseValue()
        try check(field, comparison, value, operatorToken: operatorToken, valueToken: valueToken)
        return .comparison(field, comparison, value)
    }

    private mutating func parseValue() throws(TraceQueryError) -> QueryValue {
        let token = current
        let value: QueryValue
        switch token.kind {
        case .string(let text): value = .string(text)
        case .number(let number): value = .number(number)
        case .duration(let milliseconds): value = .duration(milliseconds)
        case .identifier("true"): value = .bool(true)
        case .identifier("false"): value = .bool(false)
        case .identifier("null"): value = .null
        case .identifier("error"): value = .status(isError: true)
        case .identifier("ok"): value = .status(isError: false)
        default: throw error("a value: a \"string\", a number, a duration (250ms, 1.5s), true, false, null, error or ok", at: token)
        }
        advance()
        return value
    }

    /// What each field may be compared with, and how.
    private func check(
        _ field: SpanField,
        _ comparison: ComparisonOperator,
        _ value: QueryValue,
        operatorToken: Token,
        valueToken: Token
    ) throws(TraceQueryError) {
        let ordering: Set<ComparisonOperator> = [.less, .lessOrEqual, .greater, .greaterOrEqual]
        let matching: Set<ComparisonOperator> = [.matches, .doesNotMatch]
        switch field {
        case .duration:
            guard case .duration = value else { throw error("a duration such as 250ms, 1.5s, 2m or 800us", at: valueToken) }
            if matching.contains(comparison) { throw error("=, !=, <, <=, > or >= (duration is not text)", at: operatorToken) }
        case .status:
            guard case .status = value else { throw error("error or ok", at: valueToken) }
            guard comparison == .equal || comparison == .notEqual else { throw error("= or != (status is error or ok)", at: operatorToken) }
        case .detail:
            if case .status = value { throw error("a value: a \"string\", a number, a duration, true, false or null", at: valueToken) }
            if matching.contains(comparison) {
                guard case .string(let pattern) = value else { throw error("a \"regular expression\"", at: valueToken) }
                try checkPattern(pattern, at: valueToken)
            }
        case .source, .stage, .operation, .traceId, .spanId, .parentSpanId, .taskUUID:
            switch value {
            case .string(let text):
                if matching.contains(comparison) { try checkPattern(text, at: valueToken) }
                if ordering.contains(comparison) { throw error("=, !=, =~ or !~ (a text field)", at: operatorToken) }
            case .null:
                guard comparison == .equal || comparison == .notEqual else { throw error("= or != (with null)", at: operatorToken) }
            default:
                throw error("a \"string\"", at: valueToken)
            }
        }
    }

    private func checkPattern(_ pattern: String, at token: Token) throws(TraceQueryError) {
        do {
            _ = try Regex(pattern)
        } catch {
            throw TraceQueryError(column: token.column, message: "expected a valid regular expression: \(error)")
        }
    }

    // MARK: Pipeline

    private static let metricNames: Set<String> = ["rate", "count_over_time", "quantile_over_time", "avg_over_time"]

    private mutating func parseAggregateFilter(_ aggregate: AggregateFilter.Aggregate) throws(TraceQueryError) -> AggregateFilter {
        advance()
        try expect(.openParenthesis, "(")
        if aggregate != .count {
            guard current.kind == .identifier("duration") else { throw error("duration", at: current) }
            advance()
        }
        try expect(.closeParenthesis, ")")
        guard let comparison = current.kind.comparison, !(comparison == .matches || comparison == .doesNotMatch) else {
            throw error("a comparison (=, !=, <, <=, >, >=)", at: current)
        }
        advance()
        let valueToken = current
        switch (aggregate, valueToken.kind) {
        case (.count, .number(let number)):
            advance()
            return AggregateFilter(aggregate: aggregate, comparison: comparison, value: number)
        case (.count, _):
            throw error("a number", at: valueToken)
        case (_, .duration(let milliseconds)):
            advance()
            return AggregateFilter(aggregate: aggregate, comparison: comparison, value: milliseconds)
        default:
            throw error("a duration such as 250ms, 1.5s, 2m or 800us", at: valueToken)
        }
    }

    private mutating func parseMetric(_ name: String) throws(TraceQueryError) -> MetricFunction {
        advance()
        try expect(.openParenthesis, "(")
        let kind: MetricFunction.Kind
        switch name {
        case "rate":
            kind = .rate
        case "count_over_time":
            kind = .countOverTime
        case "avg_over_time":
            guard current.kind == .identifier("duration") else { throw error("duration", at: current) }
            advance()
            kind = .avgOverTime
        default:
            guard current.kind == .identifier("duration") else { throw error("duration", at: current) }
            advance()
            var quantiles: [Double] = []
            repeat {
                guard current.kind == .comma else { throw error(", and a quantile from 0 to 1", at: current) }
                advance()
                guard case .number(let quantile) = current.kind, quantile >= 0, quantile <= 1 else {
                    throw error("a quantile from 0 to 1", at: current)
                }
                quantiles.append(quantile)
                advance()
            } while current.kind == .comma
            kind = .quantileOverTime(quantiles)
        }
        try expect(.closeParenthesis, kind == .rate || kind == .countOverTime ? ")" : ", or )")
        var labels: [MetricFunction.Label] = []
        if current.kind == .identifier("by") {
            advance()
            try expect(.openParenthesis, "(")
            repeat {
                if !labels.isEmpty { advance() }
                switch current.kind {
                case .identifier("source"): labels.append(.source)
                case .identifier("operation"): labels.append(.operation)
                case .identifier("stage"): labels.append(.stage)
                case .attribute(let path): labels.append(.detail(path))
                default: throw error("source, operation, stage or .path.in.details", at: current)
                }
                advance()
            } while current.kind == .comma
            try expect(.closeParenthesis, ", or )")
        }
        return MetricFunction(kind: kind, groupedBy: labels)
    }

    // MARK: Tokens

    private var current: Token { tokens[position] }

    private mutating func advance() {
        if position < tokens.count - 1 { position += 1 }
    }

    private mutating func expect(_ kind: Token.Kind, _ what: String) throws(TraceQueryError) {
        guard current.kind == kind else { throw error(what, at: current) }
        advance()
    }

    private func error(_ expected: String, at token: Token) -> TraceQueryError {
        if case .invalid(let message) = token.kind { return TraceQueryError(column: token.column, message: message) }
        return TraceQueryError(column: token.column, message: "expected \(expected), found \(token.kind.description)")
    }
}

/// A token of the query language, with the column (1-based, in characters) it starts at.
struct Token: Sendable, Hashable {
    enum Kind: Sendable, Hashable {
        case openBrace, closeBrace, openParenthesis, closeParenthesis, comma, pipe
        case and, or, not
        case equal, notEqual, less, lessOrEqual, greater, greaterOrEqual, matches, doesNotMatch
        /// `>>`.
        case descendant
        case identifier(String)
        /// `.path.to.field`, its segments.
        case attribute([String])
        case string(String)
        case number(Double)
        /// In milliseconds.
        case duration(Double)
        /// What the lexer could not read, and why.
        case invalid(String)
        case end

        var comparison: ComparisonOperator? {
            switch self {
            case .equal: .equal
            case .notEqual: .notEqual
            case .less: .less
            case .lessOrEqual: .lessOrEqual
            case .greater: .greater
            case .greaterOrEqual: .greaterOrEqual
            case .matches: .matches
            case .doesNotMatch: .doesNotMatch
            default: nil
            }
        }

        var description: String {
            switch self {
            case .openBrace: "{"
            case .closeBrace: "}"
            case .openParenthesis: "("
            case .closeParenthesis: ")"
            case .comma: ","
            case .pipe: "|"
            case .and: "&&"
            case .or: "||"
            case .not: "!"
            case .equal: "="
            case .notEqual: "!="
            case .less: "<"
            case .lessOrEqual: "<="
            case .greater: ">"
            case .greaterOrEqual: ">="
            case .matches: "=~"
            case .doesNotMatch: "!~"
            case .descendant: ">>"
            case .identifier(let name): name
            case .attribute(let path): "." + path.joined(separator: ".")
            case .string(let text): "\"\(text)\""
            case .number(let number): "\(number)"
            case .duration(let milliseconds): "a duration of \(milliseconds) ms"
            case .invalid(let message): message
            case .end: "the end of the query"
            }
        }
    }

    var kind: Kind
    var column: Int
}

/// Splits query text into tokens; it never fails: what it cannot read becomes an `invalid` token,
/// which the parser reports where it meets it.
struct TraceQueryLexer {
    private let characters: [Character]
    private var index = 0
    /// The column after the last character read.
    var column: Int { index + 1 }

    /// Longer text is refused: a query is a line a person writes.
    static let maximumLength = 4096

    init(_ text: String) {
        characters = Array(text)
    }

    mutating func tokens() -> [Token] {
        var tokens: [Token] = []
        if characters.count > Self.maximumLength {
            return [Token(kind: .invalid("a query is at most \(Self.maximumLength) characters"), column: Self.maximumLength + 1)]
        }
        while true {
            let token = next()
            tokens.append(token)
            if token.kind == .end { return tokens }
            if case .invalid = token.kind {
                tokens.append(Token(kind: .end, column: column))
                return tokens
            }
        }
    }

    private var peek: Character? { index < characters.count ? characters[index] : nil }

    private func peek(_ offset: Int) -> Character? { index + offset < characters.count ? characters[index + offset] : nil }

    private mutating func next() -> Token {
        while let character = peek, character.isWhitespace { index += 1 }
        let start = column
        guard let character = peek else { return Token(kind: .end, column: start) }
        func token(_ kind: Token.Kind, length: Int) -> Token {
            index += length
            return Token(kind: kind, column: start)
        }
        switch character {
        case "{": return token(.openBrace, length: 1)
        case "}": return token(.closeBrace, length: 1)
        case "(": return token(.openParenthesis, length: 1)
        case ")": return token(.closeParenthesis, length: 1)
        case ",": return token(.comma, length: 1)
        case "|": return peek(1) == "|" ? token(.or, length: 2) : token(.pipe, length: 1)
        case "&": return peek(1) == "&" ? token(.and, length: 2) : token(.invalid("expected &&, found a single &"), length: 1)
        case "!":
            if peek(1) == "=" { return token(.notEqual, length: 2) }
            if peek(1) == "~" { return token(.doesNotMatch, length: 2) }
            return token(.not, length: 1)
        case "=":
            if peek(1) == "~" { return token(.matches, length: 2) }
            if peek(1) == "=" { return token(.invalid("expected =, found == (comparisons use a single =)"), length: 2) }
            return token(.equal, length: 1)
        case "<": return peek(1) == "=" ? token(.lessOrEqual, length: 2) : token(.less, length: 1)
        case ">":
            if peek(1) == "=" { return token(.greaterOrEqual, length: 2) }
            if peek(1) == ">" { return token(.descendant, length: 2) }
            return token(.greater, length: 1)
        case "\"": return string(start: start)
        case ".":
            if let next = peek(1), next.isNumber { return number(start: start) }
            return attribute(start: start)
        default:
            if character.isNumber || (character == "-" && peek(1).map(\.isNumber) == true) { return number(start: start) }
            if Self.isIdentifierStart(character) {
                var name = ""
                while let next = peek, Self.isIdentifierPart(next) {
                    name.append(next)
                    index += 1
                }
                return Token(kind: .identifier(name), column: start)
            }
            return token(.invalid("unexpected character \(String(reflecting: String(character)))"), length: 1)
        }
    }

    private static func isIdentifierStart(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character == "_")
    }

    private static func isIdentifierPart(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || character == "_")
    }

    /// A segment of a `.path` in details may also hold `-` (`.http.user-agent`).
    private static func isPathPart(_ character: Character) -> Bool {
        isIdentifierPart(character) || character == "-"
    }

    private mutating func string(start: Int) -> Token {
        index += 1
        var text = ""
        while let character = peek {
            index += 1
            switch character {
            case "\"":
                return Token(kind: .string(text), column: start)
            case "\\":
                guard let escaped = peek else { break }
                index += 1
                switch escaped {
                case "\"": text.append("\"")
                case "\\": text.append("\\")
                case "n": text.append("\n")
                case "t": text.append("\t")
                default:
                    return Token(kind: .invalid("expected an escape (\\\", \\\\, \\n or \\t), found \\\(escaped)"), column: column - 2)
                }
            default:
                text.append(character)
            }
        }
        return Token(kind: .invalid("expected \" to end the string that starts here"), column: start)
    }

    private mutating func attribute(start: Int) -> Token {
        var path: [String] = []
        while peek == "." {
            index += 1
            var segment = ""
            while let next = peek, Self.isPathPart(next) {
                segment.append(next)
                index += 1
            }
            guard !segment.isEmpty else {
                return Token(kind: .invalid("expected a name after . (as in .http.status)"), column: column)
            }
            path.append(segment)
        }
        return Token(kind: .attribute(path), column: start)
    }

    /// A number, or a duration: a number directly followed by ns, us, µs, ms, s, m or h.
    private mutating func number(start: Int) -> Token {
        var text = ""
        if peek == "-" {
            text.append("-")
            index += 1
        }
        while let next = peek, next.isASCII, next.isNumber || next == "." {
            text.append(next)
            index += 1
        }
        guard let value = Double(text), value.isFinite else {
            return Token(kind: .invalid("expected a number, found \(text)"), column: start)
        }
        var unit = ""
        while let next = peek, next.isLetter {
            unit.append(next)
            index += 1
        }
        guard !unit.isEmpty else { return Token(kind: .number(value), column: start) }
        let scale: Double
        switch unit {
        case "ns": scale = 1e-6
        case "us", "µs": scale = 1e-3
        case "ms": scale = 1
        case "s": scale = 1000
        case "m": scale = 60_000
        case "h": scale = 3_600_000
        default:
            return Token(kind: .invalid("expected a duration unit (ns, us, ms, s, m or h), found \(unit)"), column: start + text.count)
        }
        guard value >= 0 else { return Token(kind: .invalid("expected a duration of 0 or more"), column: start) }
        return Token(kind: .duration(value * scale), column: start)
    }
}
