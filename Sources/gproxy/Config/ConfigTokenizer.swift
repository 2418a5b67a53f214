/// Lexical layer of the haproxy.cfg reader, following HAProxy 2.6's `readcfgfile()` and `parse_line()`.
///
/// A file is cut into physical lines on LF only: there is no line continuation, a missing LF on the
/// last line is fatal, and a NUL byte stops the file. Each line is then cut into words:
/// - words are separated by unescaped spaces/tabs; a `#` outside quotes starts a comment;
/// - `\ `, `\#`, `\\`, `\'`, `\"`, `\n`, `\r`, `\t`, `\xNN` are escapes (outside single quotes);
///   any other backslash is kept as a literal character, so a trailing `\` is a word of its own;
/// - double quotes are weak (`$VAR`, `${VAR}`, `${VAR-default}`, `${VAR[*]}` are expanded),
///   single quotes are strong; quotes may open and close in the middle of a word;
/// - at most 64 words per line.
/// Positions in messages are 1-based byte offsets in the raw line, as HAProxy prints them.

/// A physical line of a configuration file, without its LF.
struct RawConfigLine: Sendable {
    var number: Int
    var bytes: ArraySlice<UInt8>
}

/// A lexical error, already worded; the caller adds `file:line`.
struct TokenizeError: Error, Equatable, Sendable {
    var message: String
}

/// What `${...}` can see: the process environment plus HAProxy's pseudo-variables.
struct ExpansionContext: Sendable {
    var environment: [String: String]
    var file: String = ""
    var line: Int = 0
    /// `${.SECTION}`: the current section's name (or keyword when unnamed).
    var section: String = ""
}

enum ConfigTokenizer {
    /// HAProxy's `MAX_LINE_ARGS`.
    static let maxWords = 64

    /// Cuts a file into lines, handing each to `body` as it is found (no list of lines: a 50 MB file
    /// has millions). The returned diagnostic (line number + message) reports a missing final LF or a
    /// stray NUL; in both cases the lines before it have still been parsed, as HAProxy does.
    static func forEachLine(_ data: [UInt8], _ body: (RawConfigLine) -> Bool) -> (line: Int, message: String)? {
        var start = 0
        var number = 1
        while start < data.count {
            var end = start
            while end < data.count, data[end] != 0x0A, data[end] != 0 { end += 1 }
            guard body(RawConfigLine(number: number, bytes: data[start..<end])) else { return nil }
            if end == data.count {
                // fgets() returned a line without LF at EOF: the file may have been cut short.
                let position = end - start + 1
                return (number, "Missing LF on last line, file might have been truncated at position \(position).")
            }
            if data[end] == 0 {
                // strlen() stops at the NUL, so HAProxy parses the head of the line, then gives up on the file.
                return (number, "Stray NUL character at position \(end - start + 1).")
            }
            start = end + 1
            number += 1
        }
        return nil
    }

    /// Splits one line into words. An empty result means a blank or comment-only line.
    static func words(of raw: ArraySlice<UInt8>, context: ExpansionContext) throws(TokenizeError) -> [String] {
        let s = Array(raw)
        let n = s.count
        var i = 0
        // readcfgfile() skips leading blanks before parse_line(); positions still count them.
        while i < n, isBlank(s[i]) || s[i] == 0x0A || s[i] == 0x0D { i += 1 }

        var words: [[UInt8]] = []
        var word: [UInt8] = []
        var squote = false
        var dquote = false
        var quoteAt = -1
        var tooMany = false

        func startNextWord() {
            words.append(word)
            word = []
            if words.count >= maxWords { tooMany = true }
        }

        scan: while i < n {
            let c = s[i]
            if c == 0x0A || c == 0x0D {
                break scan
            } else if c == hash, !squote, !dquote {
                break scan
            } else if c == dq, !squote {
                dquote.toggle()
                quoteAt = dquote ? i : -1
                i += 1
            } else if c == sq, !dquote {
                squote.toggle()
                quoteAt = squote ? i : -1
                i += 1
            } else if c == backslash, !squote {
                let next: UInt8 = i + 1 < n ? s[i + 1] : 0
                var out = c
                switch next {
                case space, backslash, hash, sq, dq:
                    out = next
                    i += 1
                case UInt8(ascii: "t"): out = 0x09; i += 1
                case UInt8(ascii: "n"): out = 0x0A; i += 1
                case UInt8(ascii: "r"): out = 0x0D; i += 1
                case dollar where dquote:
                    out = dollar
                    i += 1
                case UInt8(ascii: "x"):
                    guard i + 3 < n, let hi = hexValue(s[i + 2]), let lo = hexValue(s[i + 3]) else {
                        throw TokenizeError(message: "truncated or invalid hexadecimal sequence at position \(i + 1)")
                    }
                    out = hi << 4 | lo
                    i += 3
                default:
                    break  // not an escape: the backslash itself is the character
                }
                i += 1
                word.append(out)
            } else if isBlank(c), !squote, !dquote {
                while i < n, isBlank(s[i]) { i += 1 }
                startNextWord()
            } else if c == dollar, dquote {
                i += 1
                let (value, expand) = try expandVariable(s, at: &i, context: context)
                guard let value else { continue }
                if expand {
                    // `${VAR[*]}` splits the value into several words on blanks.
                    var k = 0
                    while k < value.count {
                        if isBlank(value[k]) {
                            startNextWord()
                            while k < value.count, isBlank(value[k]) { k += 1 }
                        } else {
                            word.append(value[k])
                            k += 1
                        }
                    }
                } else {
                    word.append(contentsOf: value)
                }
            } else {
                word.append(c)
                i += 1
            }
        }
        // parse_line() does not count an empty last word (trailing blanks, or a trailing `""`).
        if !word.isEmpty { words.append(word) }

        if squote || dquote {
            throw TokenizeError(message: "unmatched quote at position \(quoteAt + 1)")
        }
        if tooMany {
            // Offset of word 64 in the NUL-separated output buffer, as HAProxy reports it.
            let offset = words.prefix(maxWords - 1).reduce(0) { $0 + $1.count + 1 } + 1
            let last = String(decoding: words[maxWords - 1], as: UTF8.self)
            throw TokenizeError(message:
                "too many words, truncating after word \(maxWords), position \(offset): <\(last)>.")
        }
        return words.map { String(decoding: $0, as: UTF8.self) }
    }

    /// Expands `$NAME`, `${NAME}`, `${NAME-default}` or `${NAME[*]}` starting just after the `$`.
    /// Returns nil for an unset variable without default (it expands to nothing).
    private static func expandVariable(
        _ s: [UInt8], at i: inout Int, context: ExpansionContext
    ) throws(TokenizeError) -> (value: [UInt8]?, wordExpand: Bool) {
        let n = s.count
        var brace = -1
        if i < n, s[i] == UInt8(ascii: "{") {
            brace = i
            i += 1
        }
        guard i < n, isAlpha(s[i]) || s[i] == underscore || s[i] == dot else {
            throw TokenizeError(message: "forbidden first char in environment variable name at position \(i + 1)")
        }
        let nameStart = i
        if s[i] == dot { i += 1 }
        while i < n, isAlpha(s[i]) || isDigit(s[i]) || s[i] == underscore { i += 1 }
        let name = String(decoding: s[nameStart..<i], as: UTF8.self)

        var value: [UInt8]?
        if name.hasPrefix(".") {
            switch name {
            case ".LINE": value = Array(String(context.line).utf8)
            case ".FILE": value = Array(context.file.utf8)
            case ".SECTION": value = Array(context.section.utf8)
            default:
                throw TokenizeError(message:
                    "forbidden first char in environment variable name at position \(nameStart + 1)")
            }
        } else {
            value = context.environment[name].map { Array($0.utf8) }
        }

        var wordExpand = false
        if brace >= 0, i < n, s[i] == UInt8(ascii: "[") {
            let at = i
            guard i + 2 < n, s[i + 1] == UInt8(ascii: "*"), s[i + 2] == UInt8(ascii: "]") else {
                throw TokenizeError(message: "truncated or invalid word expansion sequence at position \(at + 1)")
            }
            i += 3
            wordExpand = true
        }
        if brace >= 0 {
            if i < n, s[i] == UInt8(ascii: "-") {
                // The default applies only when the variable is unset, not when it is empty.
                let defaultStart = i + 1
                while i < n, s[i] != UInt8(ascii: "}") { i += 1 }
                guard i < n else {
                    throw TokenizeError(message: "unmatched brace in environment variable name at position \(brace + 1)")
                }
                if value == nil { value = Array(s[defaultStart..<i]) }
            } else if i >= n || s[i] != UInt8(ascii: "}") {
                throw TokenizeError(message: "unmatched brace in environment variable name at position \(brace + 1)")
            }
            i += 1
        }
        return (value, wordExpand)
    }

    /// The second expansion HAProxy's address parser (`str2sa_range()` → `env_expand()`) applies to
    /// `bind`/`server` addresses: `${NAME}` anywhere, even unquoted; an unset name expands to nothing.
    static func expandAddressVariables(_ text: String, environment: [String: String]) -> String {
        var out = ""
        var rest = Substring(text)
        while let dollar = rest.range(of: "${") {
            guard let close = rest[dollar.upperBound...].firstIndex(of: "}") else { break }
            out += rest[..<dollar.lowerBound]
            out += environment[String(rest[dollar.upperBound..<close])] ?? ""
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    // MARK: byte classes (C locale)

    private static let space = UInt8(ascii: " ")
    private static let hash = UInt8(ascii: "#")
    private static let sq = UInt8(ascii: "'")
    private static let dq = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")
    private static let dollar = UInt8(ascii: "$")
    private static let underscore = UInt8(ascii: "_")
    private static let dot = UInt8(ascii: ".")

    /// isspace() minus LF/CR, which end the line before being seen as separators.
    private static func isBlank(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0B || c == 0x0C }
    private static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7A }
    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    private static func hexValue(_ c: UInt8) -> UInt8? {
        if isDigit(c) { return c - 0x30 }
        let l = c | 0x20
        return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : nil
    }
}

private extension Substring {
    func range(of needle: String) -> Range<Index>? {
        var idx = startIndex
        while idx < endIndex {
            if self[idx...].hasPrefix(needle) {
                return idx..<self.index(idx, offsetBy: needle.count)
            }
            idx = index(after: idx)
        }
        return nil
    }
}
