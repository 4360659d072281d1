import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A peer's base URL: `https://`, or plain `http://` to a loopback address only; no credentials, query or
/// fragment. Stored without a trailing slash.
public struct PeerURL: Sendable, Hashable, CustomStringConvertible {
    /// The URL as used to build requests (no trailing slash).
    public let text: String
    /// `https` or `http`.
    public let scheme: String
    /// The host name or IP address (IPv6 without brackets).
    public let host: String
    /// The explicit port, if any.
    public let port: Int?
    /// The path (`/fhir`), empty for the root.
    public let path: String

    /// Why a text is not an acceptable peer URL.
    public struct Problem: Error, Sendable, Equatable {
        /// `invalid-url` or `insecure-url`.
        public let code: ConfigurationProblem.Code
        /// What happened, in a sentence.
        public let message: String
    }

    /// Parses and checks `text`.
    public init(_ text: String) throws(Problem) {
        func invalid(_ message: String) -> Problem { Problem(code: .invalidURL, message: message) }
        guard let separator = text.range(of: "://") else {
            throw invalid("\"\(text)\" is not an absolute URL (expected https://host/path)")
        }
        let scheme = text[..<separator.lowerBound].lowercased()
        guard scheme == "https" || scheme == "http" else {
            throw invalid("the scheme must be https (found \"\(scheme)\")")
        }
        let rest = text[separator.upperBound...]
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var path = String(rest[authorityEnd...])
        if authority.contains("@") {
            throw invalid("credentials in a URL are refused; configure them under auth")
        }
        if path.contains("?") || path.contains("#") {
            throw invalid("a base URL has no query or fragment")
        }
        if path.contains(where: { $0 == " " || $0.isNewline || ($0.asciiValue.map { $0 < 0x20 } ?? false) }) {
            throw invalid("the path contains spaces or control characters")
        }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw invalid("unterminated IPv6 address") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw invalid("unexpected text after the IPv6 address") }
                portText = after.dropFirst()
            }
            guard NetworkAddress.isIPv6Literal(String(host)) else { throw invalid("\"\(host)\" is not an IPv6 address") }
        } else {
            if let colon = authority.lastIndex(of: ":") {
                host = authority[..<colon]
                portText = authority[authority.index(after: colon)...]
            } else {
                host = authority
            }
            guard !host.isEmpty else { throw invalid("the URL has no host") }
            guard host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "." || $0 == "-") }) else {
                throw invalid("\"\(host)\" is not a valid host name")
            }
        }
        var port: Int?
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                throw invalid("the port must be a number from 1 to 65535")
            }
            port = value
        }
        while path.hasSuffix("/") { path.removeLast() }
        let hostText = String(host).lowercased()
        if scheme == "http" && !NetworkAddress.isLoopback(host: hostText) {
            throw Problem(code: .insecureURL, message: "plain http is only allowed to loopback addresses")
        }
        self.scheme = scheme
        self.host = hostText
        self.port = port
        self.path = path
        let hostPart = hostText.contains(":") ? "[\(hostText)]" : hostText
        self.text = "\(scheme)://\(hostPart)\(port.map { ":\($0)" } ?? "")\(path)"
    }

    /// Whether the host is a loopback address.
    public var isLoopback: Bool { NetworkAddress.isLoopback(host: host) }

    public var description: String { text }
}

/// An address to listen on: an IP literal (or `localhost`) and a port (0 picks a free one).
public struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    /// The IP address (IPv6 without brackets) or `localhost`.
    public let host: String
    /// The TCP port; 0 asks the system for a free one.
    public let port: Int

    /// An address from parts (not checked; ``init(parsing:)`` checks).
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` or `[v6]:port`.
    public init(parsing text: String) throws(ConfigurationProblem.Detail) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw .init(.invalidValue, "expected [IPv6]:port")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
            guard NetworkAddress.isIPv6Literal(String(host)) else { throw .init(.invalidValue, "\"\(host)\" is not an IPv6 address") }
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw .init(.invalidValue, "expected host:port, e.g. 127.0.0.1:9464") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
            guard host == "localhost" || NetworkAddress.isIPv4Literal(String(host)) else {
                throw .init(.invalidValue, "\"\(host)\" is not an IP address (use an IP literal or localhost)")
            }
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw .init(.invalidValue, "the port must be a number from 0 to 65535")
        }
        self.host = String(host)
        self.port = port
    }

    /// Whether the address is a loopback address.
    public var isLoopback: Bool { NetworkAddress.isLoopback(host: host) }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A file named in the configuration: a path, or `credential:NAME` for a systemd credential
/// (`$CREDENTIALS_DIRECTORY/NAME`, from `LoadCredential=`).
public struct FileReference: Sendable, Hashable, CustomStringConvertible {
    /// The absolute path to open.
    public let path: String
    /// How the configuration wrote it (`credential:hub-token`, `keys/hub.pem`, …).
    public let written: String

    /// A reference to an absolute path (relative paths are taken from the current directory).
    public init(path: String) {
        self.path = path
        self.written = path
    }

    /// The prefix naming a systemd credential.
    public static let credentialPrefix = "credential:"

    /// Resolves `written`: `credential:NAME` in `credentialsDirectory`, a relative path against
    /// `baseDirectory` (the configuration file's directory).
    public init(resolving written: String, baseDirectory: String, credentialsDirectory: String?) throws(ConfigurationProblem.Detail) {
        if written.hasPrefix(Self.credentialPrefix) {
            let name = String(written.dropFirst(Self.credentialPrefix.count))
            guard Self.isCredentialName(name) else {
                throw .init(.invalidValue, "a credential name has letters, digits, '-', '_' and '.' only (found \"\(name)\")")
            }
            guard let credentialsDirectory, !credentialsDirectory.isEmpty else {
                throw .init(.credentialMissing, "credential \"\(name)\" is named but $CREDENTIALS_DIRECTORY is not set (LoadCredential= in the unit)")
            }
            self.path = credentialsDirectory + "/" + name
        } else {
            guard !written.isEmpty else { throw .init(.invalidValue, "an empty path") }
            self.path = written.hasPrefix("/") ? written : baseDirectory + "/" + written
        }
        self.written = written
    }

    /// Whether `name` can name a systemd credential.
    static func isCredentialName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".."
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }

    public var description: String { written == path ? path : "\(written) (\(path))" }

    /// Two references are equal when they name the same file, however written.
    public static func == (lhs: FileReference, rhs: FileReference) -> Bool { lhs.path == rhs.path }

    public func hash(into hasher: inout Hasher) { hasher.combine(path) }
}

/// Secret bytes (a token, a private key) that never print: `description` names only where they came from.
public struct SecretValue: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself.
    public let bytes: [UInt8]
    /// Where it was read from (a path or a credential name), for messages.
    public let origin: String

    /// A secret read from `origin`.
    public init(bytes: [UInt8], origin: String) {
        self.bytes = bytes
        self.origin = origin
    }

    /// A secret given in code (tests, the sandbox).
    public init(_ text: String, origin: String = "configuration") {
        self.init(bytes: Array(text.utf8), origin: origin)
    }

    /// The secret as text with surrounding white space (a trailing newline) removed.
    public var trimmedText: String {
        var text = Substring(decoding: bytes, as: UTF8.self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }

    public var description: String { "<secret from \(origin)>" }
    public var debugDescription: String { description }
}

/// Address checks shared by peer URLs and listen addresses.
enum NetworkAddress {
    static func isIPv4Literal(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    static func isIPv6Literal(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    /// `localhost`, 127.0.0.0/8, `::1` and IPv4-mapped 127.0.0.0/8.
    static func isLoopback(host: String) -> Bool {
        let host = host.lowercased()
        if host == "localhost" || host == "localhost." { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            let bytes = withUnsafeBytes(of: v6) { Array($0) }
            if bytes[0..<15].allSatisfy({ $0 == 0 }) && bytes[15] == 1 { return true }
            let mappedPrefix: [UInt8] = Array(repeating: 0, count: 10) + [0xFF, 0xFF]
            if Array(bytes[0..<12]) == mappedPrefix && bytes[12] == 127 { return true }
        }
        return false
    }
}

/// Durations written as a number of seconds or as text with a unit: `500ms`, `30s`, `5m`, `1h`.
enum DurationText {
    /// The largest value accepted, in seconds (also the schema's limit for numbers).
    static let maximumSeconds: Double = 1_000_000_000

    /// Parses text with a unit; at most 9 integer digits (the schema's pattern).
    static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("h", 3600), ("m", 60), ("s", 1)]
        guard let (suffix, scale) = units.first(where: { text.hasSuffix($0.0) }) else { return nil }
        let number = text.dropLast(suffix.count)
        let parts = number.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count),
            (1...9).contains(parts[0].count), parts[0].allSatisfy(\.isASCIIDigit),
            parts.count == 1 || (!parts[1].isEmpty && parts[1].allSatisfy(\.isASCIIDigit)),
            let value = Double(number)
        else { return nil }
        return seconds(value * scale)
    }

    /// A duration from seconds, or `nil` beyond the accepted range.
    static func seconds(_ value: Double) -> Duration? {
        guard value.isFinite, value >= 0, value <= maximumSeconds * 3600 else { return nil }
        return .milliseconds(Int64((value * 1000).rounded()))
    }

    /// `30s`, `1.5s`, `250ms`, `5m`: how a duration is shown back.
    static func format(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 3_600_000 == 0 && milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 && milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
