/// The HTTP-date of RFC 9110 §5.6.7 in its three forms, and the calendar arithmetic they need.
extension RetryAfter {
    /// Seconds since 1970 for an HTTP date in any of the three forms a recipient must read:
    ///
    ///     Sun, 06 Nov 1994 08:49:37 GMT    IMF-fixdate, the form every current server sends
    ///     Sunday, 06-Nov-94 08:49:37 GMT   obsolete RFC 850 form, with a two-digit year
    ///     Sun Nov  6 08:49:37 1994         ANSI C's asctime() form
    ///
    /// Names are case-sensitive, as the grammar says; the day name must be a day's name but is not checked
    /// against the date. `now` (seconds since 1970) places an RFC 850 date's two-digit year in a century.
    /// `nil` when `text` is none of the forms or names a date or time that does not exist.
    static func httpDate(_ text: String, now: Int) -> Int? {
        var scanner = DateScanner(text)
        let dayName = scanner.letters()
        if shortDayNames.contains(dayName), scanner.skip(", ") {
            return imfFixdate(&scanner)
        }
        if longDayNames.contains(dayName), scanner.skip(", ") {
            return rfc850Date(&scanner, now: now)
        }
        if shortDayNames.contains(dayName), scanner.skip(" ") {
            return asctimeDate(&scanner)
        }
        return nil
    }

    /// `06 Nov 1994 08:49:37 GMT`, after the day name and its comma.
    private static func imfFixdate(_ scanner: inout DateScanner) -> Int? {
        guard let day = scanner.digits(2), scanner.skip(" "),
            let month = scanner.month(), scanner.skip(" "),
            let year = scanner.digits(4), scanner.skip(" "),
            let time = scanner.timeOfDay(), scanner.skip(" GMT"), scanner.isAtEnd
        else { return nil }
        return timestamp(year: year, month: month, day: day, secondOfDay: time)
    }

    /// `06-Nov-94 08:49:37 GMT`, after the day name and its comma.
    private static func rfc850Date(_ scanner: inout DateScanner, now: Int) -> Int? {
        guard let day = scanner.digits(2), scanner.skip("-"),
            let month = scanner.month(), scanner.skip("-"),
            let twoDigitYear = scanner.digits(2), scanner.skip(" "),
            let time = scanner.timeOfDay(), scanner.skip(" GMT"), scanner.isAtEnd,
            (1...daysInMonth(year: 2000, month: month)).contains(day)
        else { return nil }
        // RFC 9110: a date that appears more than 50 years in the future is in the past century. Of the years
        // ending in these two digits, the date falls in the latest that is not more than 50 years ahead (and,
        // for 29 February, has the day).
        let today = floorDivision(now, 86_400)
        let (nowYear, nowMonth, nowDay) = civilDate(daysSinceEpoch: today)
        let latest = daysSinceEpoch(year: nowYear + 50, month: nowMonth, day: nowDay) * 86_400 + now - today * 86_400
        var year = nowYear - nowYear % 100 + twoDigitYear + 100
        while year >= 0 {
            if let date = timestamp(year: year, month: month, day: day, secondOfDay: time), date <= latest {
                return date
            }
            year -= 100
        }
        return nil
    }

    /// `Nov  6 08:49:37 1994`, after the day name and its space.
    private static func asctimeDate(_ scanner: inout DateScanner) -> Int? {
        guard let month = scanner.month(), scanner.skip(" ") else { return nil }
        let day = scanner.skip(" ") ? scanner.digits(1) : scanner.digits(2)
        guard let day, scanner.skip(" "),
            let time = scanner.timeOfDay(), scanner.skip(" "),
            let year = scanner.digits(4), scanner.isAtEnd
        else { return nil }
        return timestamp(year: year, month: month, day: day, secondOfDay: time)
    }

    /// Seconds since 1970 at `secondOfDay` on a date, or `nil` when the month has no such day.
    private static func timestamp(year: Int, month: Int, day: Int, secondOfDay: Int) -> Int? {
        guard (1...daysInMonth(year: year, month: month)).contains(day) else { return nil }
        return daysSinceEpoch(year: year, month: month, day: day) * 86_400 + secondOfDay
    }

    /// The day names of IMF-fixdate and asctime, and of RFC 850; the month names of all three.
    static let shortDayNames = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    static let longDayNames = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    static let monthNames = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The number of days in a month (1 to 12) of the proleptic Gregorian calendar.
    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    static func civilDate(daysSinceEpoch days: Int) -> (year: Int, month: Int, day: Int) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func floorDivision(_ value: Int, _ divisor: Int) -> Int {
        value >= 0 ? value / divisor : -((-value + divisor - 1) / divisor)
    }
}

/// Reads an HTTP date's parts from left to right; each read consumes what it matched, and fails on
/// anything else.
private struct DateScanner {
    private let bytes: [UInt8]
    private var index = 0

    init(_ text: String) { self.bytes = Array(text.utf8) }

    var isAtEnd: Bool { index == bytes.count }

    /// The ASCII letters from here on (possibly none).
    mutating func letters() -> String {
        let start = index
        while index < bytes.count, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(bytes[index] | 0x20) {
            index += 1
        }
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    /// Consumes `literal` if it comes next.
    mutating func skip(_ literal: String) -> Bool {
        let expected = Array(literal.utf8)
        guard bytes.count - index >= expected.count, bytes[index..<(index + expected.count)].elementsEqual(expected)
        else { return false }
        index += expected.count
        return true
    }

    /// Exactly `count` decimal digits, as a number.
    mutating func digits(_ count: Int) -> Int? {
        guard bytes.count - index >= count else { return nil }
        var value = 0
        for byte in bytes[index..<(index + count)] {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        index += count
        return value
    }

    /// A three-letter month name, as 1 to 12.
    mutating func month() -> Int? {
        guard bytes.count - index >= 3 else { return nil }
        let name = String(decoding: bytes[index..<(index + 3)], as: UTF8.self)
        guard let offset = RetryAfter.monthNames.firstIndex(of: name) else { return nil }
        index += 3
        return offset + 1
    }

    /// `hh:mm:ss` with each part in range (a leap second allowed), as seconds since midnight.
    mutating func timeOfDay() -> Int? {
        guard let hour = digits(2), skip(":"), let minute = digits(2), skip(":"), let second = digits(2),
            (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        return hour * 3_600 + minute * 60 + second
    }
}
