import Foundation
import GatewayCore
import NIOHTTP1
import Prometheus
import Testing

@testable import GatewayServer

/// The deployment artefacts under `deploy/` must describe the gateway the code builds: the dashboard and the
/// alerts use only metrics (and labels) it exports, compose and Kubernetes set only keys it reads, to values
/// it takes, and the ports, probes and scrapes are the image's and the routes'.
///
/// No YAML library is at hand: the YAML files are kept simple (`KEY: "value"` lines, `- name: KEY` items, one
/// setting a line), and read here line by line.
@Suite("deploy/ matches the code")
struct DeploymentTests {
    private static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    private func read(_ path: String) throws -> String {
        try String(contentsOf: Self.root.appendingPathComponent(path), encoding: .utf8)
    }

    /// The files under `deploy/` whose name ends in `suffix`, as paths relative to it.
    private func deployFiles(endingIn suffix: String) -> [String] {
        let directory = Self.root.appendingPathComponent("deploy").path
        return (FileManager.default.subpaths(atPath: directory) ?? []).filter { $0.hasSuffix(suffix) }.sorted()
    }

    // MARK: JSON

    @Test func everyJSONFileUnderDeployParses() throws {
        let paths = deployFiles(endingIn: ".json")
        #expect(paths.contains("grafana/xi-gateway.json"))
        for path in paths {
            let data = try Data(contentsOf: Self.root.appendingPathComponent("deploy/" + path))
            #expect(throws: Never.self, "deploy/\(path) is not JSON") {
                _ = try JSONSerialization.jsonObject(with: data)
            }
        }
    }

    // MARK: Prometheus's own checks

    static let promtool = "/usr/bin/promtool"

    /// `promtool` (Debian's `prometheus` package, which `scripts/install-deps.sh` installs) checks the rules
    /// and the scrape configuration as Prometheus itself would load them. Without it, the rules are still
    /// parsed by ``theDashboardAndTheAlertsUseOnlyExportedMetricsAndLabels()``.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: promtool), "promtool is not installed"))
    func promtoolAcceptsTheRulesAndTheScrapeConfiguration() throws {
        for (command, file, success) in [
            ("rules", "deploy/prometheus/alerts.yml", "SUCCESS: 10 rules found"),
            ("config", "deploy/prometheus/prometheus.yml", "is valid prometheus config file syntax"),
        ] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.promtool)
            process.arguments = ["check", command, file]
            process.currentDirectoryURL = Self.root
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "promtool check \(command) \(file): \(text)")
            #expect(text.contains(success), "\(text)")
        }
    }

    // MARK: Metrics

    /// Every metric the dashboard's queries and the alert rules' expressions name is one a scrape of the
    /// gateway's registry has (a histogram's `_bucket`, `_sum` and `_count` standing for the histogram), every
    /// label a selector matches on or an aggregation groups by is one of its samples carry (or `job` and
    /// `instance`, which Prometheus adds).
    @Test func theDashboardAndTheAlertsUseOnlyExportedMetricsAndLabels() throws {
        let scrape = Self.scrapeOfEveryFamily()
        #expect(scrape.types["xi_gateway_requests_total"] == "counter")
        #expect(scrape.types["xi_gateway_request_duration_seconds"] == "histogram")

        let dashboard = try JSONSerialization.jsonObject(with: Data(read("deploy/grafana/xi-gateway.json").utf8))
        let dashboardExpressions = Self.queries(inJSON: dashboard, key: nil)
        let alertExpressions = Self.alertExpressions(try read("deploy/prometheus/alerts.yml"))
        #expect(dashboardExpressions.count >= 20, "\(dashboardExpressions.count) dashboard queries found")
        #expect(alertExpressions.count >= 6, "\(alertExpressions.count) alert expressions found")

        var used: Set<String> = []
        for (source, expressions) in [("dashboard", dashboardExpressions), ("alerts.yml", alertExpressions)] {
            for expression in expressions {
                let parsed = PromQL(expression)
                var labelsInScope: Set<String> = ["job", "instance"]
                for selector in parsed.selectors {
                    let family = scrape.family(of: selector.metric)
                    #if !os(Linux)
                    // The process metrics are read from /proc: there are none elsewhere.
                    if family.hasPrefix("process_") { continue }
                    #endif
                    used.insert(family)
                    guard let type = scrape.types[family] else {
                        Issue.record("\(source): \(selector.metric) is not a metric the gateway exports: \(expression)")
                        continue
                    }
                    if selector.metric != family {
                        #expect(type == "histogram", "\(source): \(selector.metric) of a \(type)")
                    }
                    let labels = scrape.labels[family, default: []].union(["job", "instance"])
                    labelsInScope.formUnion(labels)
                    for label in selector.labels {
                        #expect(labels.contains(label), "\(source): \(family) has no label \(label): \(expression)")
                    }
                }
                for label in parsed.grouping {
                    #expect(labelsInScope.contains(label), "\(source): no metric has the label \(label): \(expression)")
                }
            }
        }
        for family in [
            "xi_gateway_requests_total", "xi_gateway_request_duration_seconds", "xi_gateway_upstream_requests_total",
            "xi_gateway_upstream_in_flight", "xi_gateway_upstream_concurrency_limit",
            "xi_gateway_upstream_backoff_remaining_seconds", "xi_gateway_cache_bytes", "xi_gateway_shared_tier_up",
            "xi_gateway_team_upstream_requests_total", "xi_gateway_team_refusals_total",
        ] {
            #expect(used.contains(family), "nothing under deploy/ shows \(family)")
        }
    }

    /// A scrape of a registry on which every kind of event was counted once, so that every family exists,
    /// the ones made on first use too (requests and their durations, upstream statuses, teams).
    private static func scrapeOfEveryFamily() -> Scrape {
        let registry = PrometheusCollectorRegistry()
        let metrics = GatewayMetrics(registry: registry, libcurlVersion: "8.5.0")
        for route in GatewayMetrics.RouteLabel.allCases {
            for cache in ResponseTrace.CacheResult.allCases {
                metrics.request(route: route, status: 200, cache: cache, nanoseconds: 1_000)
            }
        }
        var trace = ResponseTrace()
        trace.cache = .hit
        trace.causedUpstreamRequest = true
        trace.budgetRefused = true
        metrics.team("alpha", trace: trace)
        metrics.teamBudgets([("alpha", BudgetState(perMinute: 10, remaining: 4, secondsToNext: 6))])
        metrics.setCacheBound(bytes: 1 << 26)
        metrics.setTLSCertificateExpiry(secondsSince1970: 1_900_000_000)
        metrics.upstream(status: 429, outcome: .rateLimited, nanoseconds: 1_000)
        metrics.publishTallies()
        var bytes: [UInt8] = []
        registry.emit(into: &bytes)
        return Scrape(String(decoding: bytes, as: UTF8.self))
    }

    /// The families of a scrape in the text format: each one's type, and the label names its samples carry.
    private struct Scrape {
        var types: [String: String] = [:]
        var labels: [String: Set<String>] = [:]

        init(_ text: String) {
            let lines = text.split(separator: "\n").map(String.init)
            for line in lines where line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                if parts.count == 2 { types[String(parts[0])] = String(parts[1]) }
            }
            for line in lines where !line.hasPrefix("#") {
                guard let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}"), open < close else {
                    continue
                }
                let name = family(of: String(line[..<open]))
                let names = PromQL.labelNames(in: String(line[line.index(after: open)..<close]))
                labels[name, default: []].formUnion(names)
            }
        }

        /// The family a sample or a selector names: a histogram's, less its `_bucket`, `_sum` or `_count`.
        func family(of name: String) -> String {
            for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) {
                let family = String(name.dropLast(suffix.count))
                if types[family] == "histogram" { return family }
            }
            return name
        }
    }

    /// What the tests read of a PromQL expression: each metric named (an identifier beginning with
    /// `xi_gateway_` or `process_`) with the label names of its braces, and the label names of `by (...)` and
    /// `without (...)`. Quoted strings are skipped.
    private struct PromQL {
        struct Selector {
            var metric: String
            var labels: [String]
        }

        var selectors: [Selector] = []
        var grouping: [String] = []

        init(_ expression: String) {
            let characters = Array(expression)
            func isNameCharacter(_ character: Character) -> Bool {
                character.isASCII && (character.isLetter || character.isNumber || character == "_" || character == ":")
            }
            /// The index of the first character at or after `start` that is not a space or a line break.
            func skipSpaces(from start: Int) -> Int {
                var index = start
                while index < characters.count, characters[index] == " " || characters[index] == "\n" { index += 1 }
                return index
            }
            var index = 0
            while index < characters.count {
                let character = characters[index]
                if character == "\"" || character == "'" {
                    index += 1
                    while index < characters.count, characters[index] != character {
                        index += characters[index] == "\\" ? 2 : 1
                    }
                    index += 1
                    continue
                }
                guard isNameCharacter(character) else {
                    index += 1
                    continue
                }
                var end = index
                while end < characters.count, isNameCharacter(characters[end]) { end += 1 }
                let word = String(characters[index..<end])
                index = end
                let next = skipSpaces(from: end)
                let opens = next < characters.count
                if word.hasPrefix("xi_gateway_") || word.hasPrefix("process_") {
                    var labels: [String] = []
                    if opens, characters[next] == "{", let close = characters[next...].firstIndex(of: "}") {
                        labels = Self.labelNames(in: String(characters[(next + 1)..<close]))
                        index = close + 1
                    }
                    selectors.append(Selector(metric: word, labels: labels))
                } else if word == "by" || word == "without", opens, characters[next] == "(",
                    let close = characters[next...].firstIndex(of: ")")
                {
                    grouping += String(characters[(next + 1)..<close]).split(separator: ",").map {
                        $0.trimmingCharacters(in: .whitespacesAndNewlines)
                    }.filter { !$0.isEmpty }
                    index = close + 1
                }
            }
        }

        /// The label names of the inside of braces: `a="x", b=~"y"` gives `a` and `b`.
        static func labelNames(in text: String) -> [String] {
            var names: [String] = []
            var name = ""
            var readingName = true
            var inValue = false
            var escaped = false
            for character in text {
                if inValue {
                    if escaped {
                        escaped = false
                    } else if character == "\\" {
                        escaped = true
                    } else if character == "\"" {
                        inValue = false
                    }
                    continue
                }
                if character == "\"" {
                    inValue = true
                } else if character == "," {
                    readingName = true
                    name = ""
                } else if readingName {
                    if character.isLetter || character.isNumber || character == "_" {
                        name.append(character)
                    } else if !name.isEmpty {
                        names.append(name)
                        readingName = false
                    }
                }
            }
            return names
        }
    }

    /// Every string of the dashboard a query lives in: `expr` of the panels' targets, `query` and
    /// `definition` of the template variables.
    private static func queries(inJSON value: Any, key: String?) -> [String] {
        if let text = value as? String {
            return ["expr", "query", "definition"].contains(key ?? "") ? [text] : []
        }
        if let object = value as? [String: Any] {
            return object.sorted { $0.key < $1.key }.flatMap { queries(inJSON: $0.value, key: $0.key) }
        }
        if let array = value as? [Any] {
            return array.flatMap { queries(inJSON: $0, key: key) }
        }
        return []
    }

    /// The `expr:` of each rule: on its line, or the block scalar (`|`, `>-`, ...) below it.
    private static func alertExpressions(_ text: String) -> [String] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var found: [String] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            index += 1
            guard trimmed.hasPrefix("expr:") else { continue }
            let inline = trimmed.dropFirst(5).trimmingCharacters(in: .whitespaces)
            guard ["|", "|-", ">", ">-"].contains(inline) else {
                found.append(inline)
                continue
            }
            let indent = indentation(of: line)
            var block: [String] = []
            while index < lines.count,
                lines[index].trimmingCharacters(in: .whitespaces).isEmpty || indentation(of: lines[index]) > indent
            {
                block.append(lines[index].trimmingCharacters(in: .whitespaces))
                index += 1
            }
            found.append(block.joined(separator: " "))
        }
        return found
    }

    private static func indentation(of line: String) -> Int {
        line.prefix { $0 == " " }.count
    }

    // MARK: Configuration keys

    /// compose.yml's gateway replicas set only keys the gateway reads, to values it takes, and the key only
    /// as a secret file.
    @Test func composeSetsOnlyKnownKeysToAValidConfiguration() throws {
        let compose = try read("deploy/compose.yml")
        let lines = Self.yamlLines(compose)
        var settings: [String: String] = [:]
        for section in Self.gatewaySections(ofCompose: lines) {
            for block in Self.blocks(in: section, under: { $0 == "environment:" }) {
                for setting in Self.mapping(block) { settings[setting.key] = setting.value }
            }
        }
        #expect(!settings.isEmpty, "no environment found for the gateway replicas")
        try checkSettings(settings, in: "compose.yml")
        #expect(settings["REDIS_URL"] == "redis://redis:6379")
        let keyFile = try #require(settings["ELEVENLABS_API_KEY_FILE"])
        #expect(keyFile.hasPrefix("/run/secrets/"))
        let secret = String(keyFile.dropFirst("/run/secrets/".count))
        #expect(lines.contains { $0.text == "- \(secret)" }, "the replicas do not mount the secret \(secret)")
        #expect(lines.contains { $0.text == "\(secret):" }, "compose.yml does not define the secret \(secret)")
    }

    /// The Kubernetes ConfigMap and the Deployment's `env` set only keys the gateway reads, to values it
    /// takes; the key comes from the mounted Secret; the pods get longer than SHUTDOWN_GRACE_SECONDS to stop.
    @Test func kubernetesSetsOnlyKnownKeysToAValidConfiguration() throws {
        let settings = try kubernetesSettings()
        try checkSettings(settings, in: "kubernetes")
        let configuration = try gatewayConfiguration(overriddenBy: settings)
        #expect(configuration.redis != nil, "the replicas should share a Redis")

        let deployment = Self.yamlLines(try read("deploy/kubernetes/deployment.yaml"))
        let configMap = Self.yamlLines(try read("deploy/kubernetes/configmap.yaml"))
        let secret = Self.yamlLines(try read("deploy/kubernetes/secret.example.yaml"))
        let configMapName = try #require(Self.metadataName(configMap))
        let secretName = try #require(Self.metadataName(secret))
        #expect(deployment.contains { $0.text == "name: \(configMapName)" }, "the ConfigMap is not used")
        #expect(deployment.contains { $0.text == "secretName: \(secretName)" }, "the Secret is not mounted")
        let keyFile = try #require(settings["ELEVENLABS_API_KEY_FILE"])
        let mountPaths = deployment.compactMap { Self.keyValue($0.text) }.filter { $0.key == "mountPath" }.map(\.value)
        #expect(mountPaths.contains { keyFile.hasPrefix($0 + "/") }, "\(keyFile) is in no mounted volume")

        let grace = deployment.compactMap { Self.keyValue($0.text) }.first { $0.key == "terminationGracePeriodSeconds" }
        let graceValue = grace.flatMap { Int($0.value) }
        let graceSeconds = try #require(graceValue, "no terminationGracePeriodSeconds")
        #expect(graceSeconds > configuration.shutdownGraceSeconds)
        #expect(deployment.contains { $0.text == "runAsNonRoot: true" })
        #expect(deployment.contains { $0.text == "readOnlyRootFilesystem: true" })
        #expect(deployment.contains { $0.text == "replicas: 2" })
    }

    /// Every name set looks like a configuration key and is one the gateway reads (or a documented `*_FILE`
    /// form of one); the key is never set itself, only its file; and the whole makes a valid configuration.
    private func checkSettings(_ settings: [String: String], in source: String) throws {
        let known = Set(GatewayConfiguration.keys.map(\.name))
        let readme = try read("README.md")
        for name in settings.keys.sorted() {
            #expect(Self.isKeyName(name), "\(source): \(name) is not a configuration key's name")
            let documentedFile =
                name.hasSuffix("_FILE") && known.contains(String(name.dropLast(5))) && readme.contains("`\(name)`")
            #expect(known.contains(name) || documentedFile, "\(source): \(name) is not a configuration key")
        }
        #expect(settings["ELEVENLABS_API_KEY"] == nil, "\(source) holds the upstream key itself")
        #expect(settings["ELEVENLABS_API_KEY_FILE"] != nil, "\(source) does not name the key's file")
        _ = try gatewayConfiguration(overriddenBy: settings)
    }

    /// The configuration a container gets: the image's environment, then `settings`; files of secrets are
    /// not read here (the key stands in for its file, and REDIS_URL and ADMIN_TOKEN for theirs).
    private func gatewayConfiguration(overriddenBy settings: [String: String]) throws -> GatewayConfiguration {
        var values = try dockerfileSettings()
        for (name, value) in settings where !name.hasSuffix("_FILE") { values[name] = value }
        values["ELEVENLABS_API_KEY"] = "k"
        let lookup = values
        return try GatewayConfiguration { lookup[$0] }
    }

    /// The ConfigMap's data, then the Deployment's env.
    private func kubernetesSettings() throws -> [String: String] {
        var settings: [String: String] = [:]
        let configMap = Self.yamlLines(try read("deploy/kubernetes/configmap.yaml"))
        for block in Self.blocks(in: configMap, under: { $0 == "data:" }) {
            for setting in Self.mapping(block) { settings[setting.key] = setting.value }
        }
        let deployment = Self.yamlLines(try read("deploy/kubernetes/deployment.yaml"))
        for block in Self.blocks(in: deployment, under: { $0 == "env:" }) {
            var name: String?
            for line in block {
                let text = line.text.hasPrefix("- ") ? String(line.text.dropFirst(2)) : line.text
                guard let setting = Self.keyValue(text) else { continue }
                if setting.key == "name" {
                    name = setting.value
                    settings[setting.value] = ""
                } else if setting.key == "value", let name {
                    settings[name] = setting.value
                }
            }
        }
        return settings
    }

    /// The image's `ENV` settings, read as DocumentationTests reads them.
    private func dockerfileSettings() throws -> [String: String] {
        DocumentationTests.environmentSettings(ofDockerfile: try read("Dockerfile"))
    }

    /// The ports of the image's `EXPOSE` line.
    private func exposedPorts() throws -> [Int] {
        let lines = try read("Dockerfile").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let expose = lines.first { $0.hasPrefix("EXPOSE ") } ?? ""
        return expose.split(separator: " ").dropFirst().compactMap { Int($0) }
    }

    private static func isKeyName(_ name: String) -> Bool {
        guard name.count >= 2, let first = name.first, first.isASCII, first.isUppercase else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isUppercase || $0.isNumber || $0 == "_") }
    }

    // MARK: Ports, probes and scrapes

    /// The Deployment's container ports are the image's; its probes reach `/readyz` and `/healthz` on a
    /// listener that serves them; the API Service and the admin Service target the API and admin ports, the
    /// admin one never exposed beyond the cluster; the ServiceMonitor scrapes `/metrics` on the admin listener.
    @Test func kubernetesPortsProbesAndScrapesMatchTheImageAndTheRoutes() throws {
        let configuration = try gatewayConfiguration(overriddenBy: try kubernetesSettings())
        let apiPort = configuration.listenPort
        let adminPort = try #require(configuration.adminListen?.port, "the deployment needs the admin listener")
        let exposed = try exposedPorts()
        #expect(exposed == [apiPort, adminPort])

        let deployment = Self.yamlLines(try read("deploy/kubernetes/deployment.yaml"))
        var found: [String: Int] = [:]
        for block in Self.blocks(in: deployment, under: { $0 == "ports:" }) {
            var name: String?
            for line in block {
                let text = line.text.hasPrefix("- ") ? String(line.text.dropFirst(2)) : line.text
                guard let setting = Self.keyValue(text) else { continue }
                if setting.key == "name" { name = setting.value }
                if setting.key == "containerPort", let port = Int(setting.value) {
                    found[name ?? "\(port)"] = port
                    name = nil
                }
            }
        }
        let portsByName = found
        #expect(Set(portsByName.values) == Set(exposed), "container ports \(portsByName)")
        func resolve(_ port: String) -> Int? { Int(port) ?? portsByName[port] }

        let probes: [(block: String, path: String, expected: Route)] = [
            ("readinessProbe:", "/readyz", .readiness(isHead: false)),
            ("livenessProbe:", "/healthz", .health(isHead: false)),
        ]
        for probe in probes {
            let probeBlocks = Self.blocks(in: deployment, under: { $0 == probe.block })
            let block = try #require(probeBlocks.first, "no \(probe.block)")
            let settings = block.compactMap { Self.keyValue($0.text) }
            let pathValue = settings.first { $0.key == "path" }?.value
            let portValue = settings.first { $0.key == "port" }.flatMap { resolve($0.value) }
            let path = try #require(pathValue, "\(probe.block) has no path")
            let port = try #require(portValue, "\(probe.block) has no port the container has")
            #expect(path == probe.path)
            #expect(port == apiPort || port == adminPort, "\(probe.block) port \(port)")
            let role: ListenerRole = port == adminPort ? .admin : .api
            let expected = probe.expected
            #expect(Route(method: .GET, uri: path, role: role) == expected, "\(probe.block) \(path) on \(port)")
        }

        let services = Self.documents(try read("deploy/kubernetes/service.yaml"))
        var targeted: Set<Int> = []
        for service in services {
            let settings = service.compactMap { Self.keyValue($0.text) }
            let targets = Set(settings.filter { $0.key == "targetPort" }.compactMap { resolve($0.value) })
            #expect(targets.isSubset(of: Set(exposed)), "a Service targets \(targets)")
            targeted.formUnion(targets)
            if targets.contains(adminPort) {
                #expect(!targets.contains(apiPort), "the admin port shares a Service with the API")
                let type = settings.first { $0.key == "type" }?.value ?? "ClusterIP"
                #expect(type == "ClusterIP", "the admin port's Service is a \(type)")
            }
        }
        #expect(targeted == Set(exposed))

        let monitor = Self.yamlLines(try read("deploy/kubernetes/servicemonitor.yaml"))
        let endpoints = Self.blocks(in: monitor, under: { $0 == "endpoints:" })
        let endpoint = try #require(endpoints.first, "the ServiceMonitor has no endpoints")
        let endpointSettings = endpoint.map { $0.text.hasPrefix("- ") ? String($0.text.dropFirst(2)) : $0.text }
            .compactMap { Self.keyValue($0) }
        let scrapedPortValue = endpointSettings.first { $0.key == "port" }.flatMap { resolve($0.value) }
        let scrapedPort = try #require(scrapedPortValue, "the ServiceMonitor scrapes no port the container has")
        let scrapedPath = endpointSettings.first { $0.key == "path" }?.value ?? "/metrics"
        #expect(scrapedPort == adminPort)
        let metricsRoute: Route = .metrics
        #expect(Route(method: .GET, uri: scrapedPath, role: .admin) == metricsRoute)
    }

    /// compose.yml publishes the replicas' API port, and their admin port on the host's loopback only (for the
    /// status page); Prometheus scrapes `/metrics` on each replica's admin port.
    @Test func composeAndPrometheusUseTheImagesPortsAndRoutes() throws {
        let composeLines = Self.yamlLines(try read("deploy/compose.yml"))
        let configuration = try gatewayConfiguration(overriddenBy: [:])
        let apiPort = configuration.listenPort
        let adminPort = try #require(configuration.adminListen?.port)

        var replicas: [String] = []
        for section in Self.gatewaySections(ofCompose: composeLines) {
            for block in Self.blocks(in: section, under: { $0 == "ports:" }) {
                for line in block where line.text.hasPrefix("- ") {
                    let published = line.text.dropFirst(2).trimmingCharacters(in: CharacterSet(charactersIn: "\"' "))
                    let parts = published.split(separator: ":")
                    let containerPort = parts.last.flatMap { Int($0) }
                    #expect(
                        containerPort == apiPort || containerPort == adminPort,
                        "compose.yml publishes \(published)"
                    )
                    // The admin port (the status page, purges) only ever on the host's loopback.
                    if containerPort == adminPort {
                        #expect(parts.count == 3 && parts[0] == "127.0.0.1", "compose.yml publishes \(published)")
                    }
                }
            }
        }
        let serviceBlocks = Self.blocks(in: composeLines, under: { $0 == "services:" })
        let services = try #require(serviceBlocks.first, "compose.yml has no services")
        let serviceIndent = services.first?.indent ?? 0
        for line in services where line.indent == serviceIndent && line.text.hasPrefix("gateway") {
            replicas.append(String(line.text.dropLast()))
        }
        #expect(replicas.count == 2, "gateway replicas in compose.yml: \(replicas)")

        let prometheus = Self.yamlLines(try read("deploy/prometheus/prometheus.yml"))
        var scraped: [String] = []
        for block in Self.blocks(in: prometheus, under: { $0 == "- targets:" || $0 == "targets:" }) {
            for line in block where line.text.hasPrefix("- ") {
                let target = line.text.dropFirst(2).trimmingCharacters(in: CharacterSet(charactersIn: "\"' "))
                let parts = target.split(separator: ":")
                guard parts.count == 2, replicas.contains(String(parts[0])) else { continue }
                #expect(Int(parts[1]) == adminPort, "Prometheus scrapes \(target)")
                scraped.append(String(parts[0]))
            }
        }
        #expect(Set(scraped) == Set(replicas), "Prometheus scrapes \(scraped) of \(replicas)")
        let path = prometheus.compactMap { Self.keyValue($0.text) }.first { $0.key == "metrics_path" }?.value
        let metricsRoute: Route = .metrics
        #expect(Route(method: .GET, uri: path ?? "/metrics", role: .admin) == metricsRoute)
        #expect(prometheus.contains { $0.text == "- alerts.yml" }, "prometheus.yml does not load alerts.yml")
    }

    /// kustomization.yaml lists every manifest but the example Secret (a real key must never be applied from
    /// the repository).
    @Test func theKustomizationListsEveryManifestButTheExampleSecret() throws {
        let lines = Self.yamlLines(try read("deploy/kubernetes/kustomization.yaml"))
        let resourceBlocks = Self.blocks(in: lines, under: { $0 == "resources:" })
        let resources = try #require(resourceBlocks.first, "kustomization.yaml has no resources")
        let listed = Set(resources.filter { $0.text.hasPrefix("- ") }.map { String($0.text.dropFirst(2)) })
        let manifests = Set(
            deployFiles(endingIn: ".yaml").filter { $0.hasPrefix("kubernetes/") }.map {
                String($0.dropFirst("kubernetes/".count))
            }
        )
        #expect(listed == manifests.subtracting(["kustomization.yaml", "secret.example.yaml"]))
    }

    // MARK: A line reader for simple YAML

    /// A line of YAML that is neither blank nor a comment: its indentation and its text, trimmed.
    private struct YAMLLine {
        var indent: Int
        var text: String
    }

    private struct Setting {
        var key: String
        var value: String
    }

    private static func yamlLines(_ text: String) -> [YAMLLine] {
        text.split(separator: "\n").compactMap { raw -> YAMLLine? in
            let line = String(raw)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, !trimmed.hasPrefix("#"), trimmed != "---" else { return nil }
            return YAMLLine(indent: indentation(of: line), text: trimmed)
        }
    }

    /// The documents of a file of several, split at `---` lines.
    private static func documents(_ text: String) -> [[YAMLLine]] {
        text.components(separatedBy: "\n---\n").map { yamlLines($0) }.filter { !$0.isEmpty }
    }

    /// The lines under each line whose text `isHeader` takes: those after it indented more deeply.
    private static func blocks(in lines: [YAMLLine], under isHeader: (String) -> Bool) -> [[YAMLLine]] {
        var found: [[YAMLLine]] = []
        for (index, line) in lines.enumerated() where isHeader(line.text) {
            found.append(Array(lines[(index + 1)...].prefix { $0.indent > line.indent }))
        }
        return found
    }

    /// The `KEY: value` lines (or `- KEY=value` items) at the first indentation of `block`.
    private static func mapping(_ block: [YAMLLine]) -> [Setting] {
        guard let indent = block.first?.indent else { return [] }
        return block.filter { $0.indent == indent }.compactMap { line -> Setting? in
            if line.text.hasPrefix("- ") {
                let parts = line.text.dropFirst(2).split(separator: "=", maxSplits: 1).map(String.init)
                return parts.count == 2 ? Setting(key: parts[0], value: parts[1]) : nil
            }
            return keyValue(line.text)
        }
    }

    /// `key: value`, the value without its quotes (`nil` when there is no colon).
    private static func keyValue(_ text: String) -> Setting? {
        guard let colon = text.range(of: ":") else { return nil }
        var value = text[colon.upperBound...].trimmingCharacters(in: .whitespaces)
        if value.count >= 2, let first = value.first, first == "\"" || first == "'", value.last == first {
            value = String(value.dropFirst().dropLast())
        }
        return Setting(key: String(text[..<colon.lowerBound]), value: value)
    }

    /// The `name:` under the first `metadata:`.
    private static func metadataName(_ lines: [YAMLLine]) -> String? {
        blocks(in: lines, under: { $0 == "metadata:" }).first.flatMap { block in
            mapping(block).first { $0.key == "name" }?.value
        }
    }

    /// The parts of compose.yml that configure a gateway replica: the top-level `x-gateway` extension the
    /// replicas merge in, and each service whose name begins with `gateway`.
    private static func gatewaySections(ofCompose lines: [YAMLLine]) -> [[YAMLLine]] {
        var sections = blocks(in: lines, under: { $0.hasPrefix("x-gateway:") })
        if let services = blocks(in: lines, under: { $0 == "services:" }).first, let indent = services.first?.indent {
            for (index, line) in services.enumerated() where line.indent == indent && line.text.hasPrefix("gateway") {
                sections.append(Array(services[(index + 1)...].prefix { $0.indent > indent }))
            }
        }
        return sections
    }
}
