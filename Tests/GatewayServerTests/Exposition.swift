/// A scrape in the Prometheus text format, read back for the tests: each family's `# TYPE` and `# HELP`,
/// and each sample.
struct Exposition {
    struct Sample {
        /// The sample's name (for a histogram, with its `_bucket`, `_sum` or `_count`).
        var name: String
        /// What is between the braces, as written (`""` without labels).
        var labels: String
        var value: Double
    }

    /// The type of each family with a `# TYPE` line.
    private(set) var types: [String: String] = [:]
    /// The help text of each family with a `# HELP` line.
    private(set) var helps: [String: String] = [:]
    private(set) var samples: [Sample] = []
    /// Lines that are neither a comment nor a sample with a number.
    private(set) var malformed: [String] = []

    init(_ text: String) {
        for line in text.split(separator: "\n").map(String.init) {
            if line.hasPrefix("# TYPE ") || line.hasPrefix("# HELP ") {
                let parts = line.dropFirst(7).split(separator: " ", maxSplits: 1).map(String.init)
                guard parts.count == 2 else {
                    malformed.append(line)
                    continue
                }
                if line.hasPrefix("# TYPE ") { types[parts[0]] = parts[1] } else { helps[parts[0]] = parts[1] }
                continue
            }
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                malformed.append(line)
                continue
            }
            let series = line[..<space]
            if let open = series.firstIndex(of: "{"), series.hasSuffix("}") {
                let labels = series[series.index(after: open)..<series.index(before: series.endIndex)]
                samples.append(Sample(name: String(series[..<open]), labels: String(labels), value: value))
            } else {
                samples.append(Sample(name: String(series), labels: "", value: value))
            }
        }
    }

    /// The value of the sample `name{labels}`, if there is one.
    func value(_ name: String, _ labels: String = "") -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    /// The family a sample belongs to: its name, less a histogram's suffix when the family is one.
    func family(of sample: Sample) -> String {
        for suffix in ["_bucket", "_sum", "_count"] where sample.name.hasSuffix(suffix) {
            let family = String(sample.name.dropLast(suffix.count))
            if types[family] == "histogram" { return family }
        }
        return sample.name
    }
}
