import Foundation
import GatewayCore
import NIOCore
import NIOHTTP1

/// `GET /` on the admin listener: one self-contained HTML page (no external script, font or style, so it
/// works in a closed network) that reads `GET /admin/status` every 2 seconds and draws it. Read-only but
/// for the purge buttons, which send the admin token typed into the page and clear it; the page stores
/// nothing in the browser.
///
/// Its `Content-Security-Policy` allows exactly its own script and style (by hash), requests to its own
/// origin, and nothing else: no frame may hold it, no form may post anywhere. Every figure and agent id
/// reaches the page through `textContent`, never as markup.
enum StatusPage {
    /// The page's answer; made once.
    static let response: GatewayResponse = {
        var headers = HTTPHeaders([
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Security-Policy", contentSecurityPolicy),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ])
        headers.add(name: "X-Frame-Options", value: "DENY")
        return GatewayResponse(status: .ok, headers: headers, body: ByteBuffer(string: html))
    }()

    /// Whether `host` (the request's `Host`) names the listener directly: an IPv4 or bracketed IPv6 address
    /// or `localhost`, with or without a port, or no `Host` at all (HTTP/1.0). A browser that a page on
    /// another site sends here by DNS rebinding names that site instead, and gets no figures: the page and
    /// its JSON need no token, so this is what keeps another site's script from reading them.
    static func isDirect(host: String?) -> Bool {
        guard let host, !host.isEmpty else { return true }
        var name = Substring(host)
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return false }
            let after = name[name.index(after: close)...]
            guard after.isEmpty || (after.hasPrefix(":") && after.dropFirst().allSatisfy(Self.isDigit)) else {
                return false
            }
            return name[name.index(after: name.startIndex)..<close].allSatisfy {
                $0.isHexDigit || $0 == ":" || $0 == "."
            }
        }
        if let colon = name.lastIndex(of: ":") {
            guard name[name.index(after: colon)...].allSatisfy(Self.isDigit) else { return false }
            name = name[..<colon]
        }
        if name.lowercased() == "localhost" { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { part in
                (1...3).contains(part.count) && part.allSatisfy(Self.isDigit) && Int(part).map { $0 <= 255 } == true
            }
    }

    private static func isDigit(_ character: Character) -> Bool { character >= "0" && character <= "9" }

    static let contentSecurityPolicy =
        "default-src 'none'; script-src '\(digest(script))'; style-src '\(digest(style))'; "
        + "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

    /// A CSP source for `text`: its SHA-256, in base64.
    private static func digest(_ text: String) -> String {
        "sha256-" + Data(SHA256.hash(text.utf8)).base64EncodedString()
    }

    static let html =
        #"<!doctype html><html lang="en"><head><meta charset="utf-8">"#
        + #"<meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,">"#
        + "<title>xi-gateway status</title><style>\(style)</style></head><body>\(markup)<script>\(script)</script>"
        + "</body></html>"

    private static let markup = #"""
        <header><h1>xi-gateway</h1><span class="meta">version <b data-figure="version">…</b> · up <b data-figure="uptime">…</b> · shared tier <b id="shared-tier" class="badge" data-figure="shared-tier">…</b></span><span class="meta" id="updated"></span></header>
        <div id="backoff" class="banner" hidden>Backing off: the upstream answered 429. Requests that need it are refused for <b data-figure="backoff-left">0</b> s more; cached pages are still served.</div>
        <div id="error" class="banner warn" hidden></div>
        <main>
        <section class="tiles">
        <div class="tile"><h2>Requests per second</h2><p class="big" data-figure="rps">…</p><p class="small"><b data-figure="requests">0</b> list requests in the last <b data-figure="window">0</b> s</p></div>
        <div class="tile"><h2>Hit ratio</h2><p class="big" data-figure="hit-ratio">…</p><p class="small"><b data-figure="hits">0</b> hits · <b data-figure="misses">0</b> not from the cache</p></div>
        <div class="tile"><h2>Cache</h2><p class="big"><span data-figure="cache-entries">0</span> pages</p><div class="bar"><div id="cache-bar"></div></div><p class="small"><b data-figure="cache-bytes">0</b> of <b data-figure="cache-max">0</b> · <b data-figure="evictions">0</b> evicted</p></div>
        <div class="tile"><h2>Upstream in flight</h2><p class="big"><span data-figure="in-flight">0</span> / <span data-figure="limit">0</span></p><div class="bar"><div id="flight-bar"></div></div><p class="small">queued <b data-figure="queued">0</b> · waiting on a fetch <b data-figure="waiters">0</b></p></div>
        </section>
        <section class="panel"><h2>The last minute</h2><svg id="chart" viewBox="0 0 600 140" preserveAspectRatio="none" role="img" aria-label="requests per second and hit ratio, last minute"></svg><p class="small legend"><span class="key req"></span>requests per second (peak <b data-figure="peak">0</b>) <span class="key hit"></span>hit ratio</p></section>
        <section class="columns">
        <div class="panel"><h2>Upstream statuses, last minute</h2><table id="statuses"><thead><tr><th>status</th><th>answers</th></tr></thead><tbody></tbody></table><h3>Refused an upstream slot</h3><table id="rejections"><thead><tr><th>reason</th><th>requests</th></tr></thead><tbody></tbody></table></div>
        <div class="panel"><h2>Teams</h2><table id="teams"><thead><tr><th>team</th><th>upstream, last minute</th><th>budget per minute</th><th>left now</th><th>refused, last minute</th><th>since start</th></tr></thead><tbody></tbody></table><p class="small" id="teams-note"></p></div>
        </section>
        <section class="panel"><h2>Cached agents</h2><form id="purge" autocomplete="off"><label>Admin token <input type="password" id="token" autocomplete="new-password" spellcheck="false"></label><button type="button" id="purge-all" class="danger">Purge everything</button><span id="purge-result" role="status"></span></form><p class="small">The token is sent with one purge and then cleared; the page keeps nothing. Purging an agent also drops the pages listed without an agent filter.</p><table id="agents"><thead><tr><th>agent</th><th>pages here</th><th></th></tr></thead><tbody></tbody></table><p class="small" id="agents-note"></p></section>
        </main>
        """#

    private static let style = #"""
        :root{--bg:#f6f7f9;--fg:#1d2330;--muted:#667085;--card:#fff;--line:#e3e6eb;--accent:#2f6fde;--good:#1f9d55;--bad:#d92d20;font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif}
        *{box-sizing:border-box}body{margin:0;background:var(--bg);color:var(--fg)}
        header{display:flex;flex-wrap:wrap;gap:16px;align-items:baseline;padding:14px 24px;background:#111827;color:#f9fafb}
        h1{font-size:20px;margin:0}h2{font-size:13px;font-weight:600;color:var(--muted);margin:0 0 8px;text-transform:uppercase;letter-spacing:.04em}h3{font-size:13px;margin:14px 0 6px}
        .meta{color:#d1d5db}.meta b{color:#fff}#updated{margin-left:auto;font-size:12px}
        .badge{padding:1px 8px;border-radius:10px;background:#4b5563}.badge.up{background:var(--good)}.badge.down{background:var(--bad)}
        .banner{padding:14px 24px;font-size:18px;font-weight:600;background:var(--bad);color:#fff}.banner.warn{background:#b54708;font-size:14px}
        main{padding:16px 24px;display:grid;gap:16px}
        .tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:16px}
        .tile,.panel{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px}
        .big{font-size:30px;font-weight:650;margin:0 0 6px}.small{color:var(--muted);font-size:12px;margin:6px 0 0}
        .bar{height:8px;background:var(--line);border-radius:4px;overflow:hidden}.bar>div{height:100%;width:0;background:var(--accent)}.bar>div.full{background:var(--bad)}
        .columns{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:16px}
        table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line)}th{color:var(--muted);font-weight:500;font-size:12px}
        td.num{font-variant-numeric:tabular-nums}tr.over td{color:var(--bad);font-weight:600}
        #chart{width:100%;height:140px;display:block}.key{display:inline-block;width:12px;height:12px;border-radius:2px;margin:0 6px 0 12px;vertical-align:-2px}.key.req{background:#9db8ee}.key.hit{background:var(--good)}
        form{display:flex;flex-wrap:wrap;gap:10px;align-items:center}input{font:inherit;padding:4px 8px;border:1px solid var(--line);border-radius:4px}
        button{font:inherit;padding:4px 10px;border:1px solid var(--line);border-radius:4px;background:#fff;cursor:pointer}button.danger{border-color:var(--bad);color:var(--bad)}
        #purge-result{font-weight:600}
        """#

    private static let script = #"""
        "use strict";
        const $ = (id) => document.getElementById(id);
        const show = (name, text) => { for (const e of document.querySelectorAll('[data-figure="' + name + '"]')) e.textContent = String(text); };
        const bytes = (n) => { const units = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0; while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; } return (i ? n.toFixed(1) : n) + " " + units[i]; };
        const duration = (s) => { const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60); return d ? d + "d " + h + "h" : h ? h + "h " + m + "m" : m ? m + "m " + s % 60 + "s" : s + "s"; };
        const percent = (part, whole) => whole > 0 ? Math.min(100, 100 * part / whole) : 0;
        function cell(row, value, numeric) { const td = document.createElement("td"); if (value instanceof Node) td.append(value); else td.textContent = String(value); if (numeric) td.className = "num"; row.append(td); }
        function rows(id, list, make) { const body = $(id).tBodies[0]; body.replaceChildren(); for (const item of list) { const tr = document.createElement("tr"); make(tr, item); body.append(tr); } }
        function svg(name, attributes) { const e = document.createElementNS("http://www.w3.org/2000/svg", name); for (const k in attributes) e.setAttribute(k, attributes[k]); return e; }
        function chart(requests, hits) {
          const box = $("chart"), width = 600, bottom = 140, height = 132, n = requests.length, step = width / n, peak = Math.max(1, ...requests);
          box.replaceChildren();
          for (const y of [0.25, 0.5, 0.75]) box.append(svg("line", { x1: 0, x2: width, y1: bottom - height * y, y2: bottom - height * y, stroke: "#e3e6eb", "stroke-width": 1 }));
          requests.forEach((r, i) => { const h = height * r / peak; if (r > 0) box.append(svg("rect", { x: i * step + 1, y: bottom - h, width: Math.max(1, step - 2), height: h, fill: "#9db8ee" })); });
          const points = []; requests.forEach((r, i) => { if (r > 0) points.push((i * step + step / 2).toFixed(1) + "," + (bottom - height * hits[i] / r).toFixed(1)); });
          if (points.length) box.append(svg("polyline", { points: points.join(" "), fill: "none", stroke: "#1f9d55", "stroke-width": 2 }));
          for (const p of points) { const [x, y] = p.split(","); box.append(svg("circle", { cx: x, cy: y, r: 3, fill: "#1f9d55" })); }
          show("peak", Math.max(0, ...requests));
        }
        function render(s) {
          const m = s.last_minute, c = s.cache, u = s.upstream;
          show("version", s.version); show("uptime", duration(s.uptime_seconds));
          show("shared-tier", s.shared_tier); $("shared-tier").className = "badge " + s.shared_tier;
          show("rps", m.requests_per_second); show("requests", m.requests); show("window", m.seconds);
          show("hit-ratio", m.requests === 0 ? "–" : (100 * m.hits / m.requests).toFixed(1) + " %"); show("hits", m.hits); show("misses", m.misses);
          show("cache-entries", c.entries); show("cache-bytes", bytes(c.bytes)); show("cache-max", bytes(c.max_bytes)); show("evictions", c.evictions);
          $("cache-bar").style.width = percent(c.bytes, c.max_bytes) + "%"; $("cache-bar").className = percent(c.bytes, c.max_bytes) > 90 ? "full" : "";
          show("in-flight", u.in_flight); show("limit", u.limit); show("queued", u.queued); show("waiters", u.singleflight_waiters);
          $("flight-bar").style.width = percent(u.in_flight, u.limit) + "%"; $("flight-bar").className = u.in_flight >= u.limit && u.limit > 0 ? "full" : "";
          show("backoff-left", u.backoff_seconds_left); $("backoff").hidden = u.backoff_seconds_left <= 0;
          const statuses = Object.entries(m.upstream);
          rows("statuses", statuses.length ? statuses : [["none", 0]], (tr, [status, count]) => { cell(tr, status); cell(tr, count, true); if (!/^2/.test(status) && status !== "none") tr.className = "over"; });
          rows("rejections", Object.entries(m.rejections), (tr, [reason, count]) => { cell(tr, reason.replace("_", " ")); cell(tr, count, true); if (count > 0) tr.className = "over"; });
          rows("teams", s.teams, (tr, t) => {
            cell(tr, t.team); cell(tr, t.spent_last_minute, true); cell(tr, t.budget_per_minute === null ? "unlimited" : t.budget_per_minute, true);
            cell(tr, t.remaining === null ? "–" : t.remaining, true); cell(tr, t.refused_last_minute, true); cell(tr, t.spent + " spent, " + t.refused + " refused", true);
            if (t.refused_last_minute > 0) tr.className = "over";
          });
          $("teams-note").textContent = s.teams.length ? "Budgets are shared by every replica when Redis is in use; the counts are this replica's." : "No CLIENTS_FILE: the gateway is open, with no team budgets.";
          rows("agents", c.agents, (tr, a) => { cell(tr, a.agent_id); cell(tr, a.pages, true); const b = document.createElement("button"); b.type = "button"; b.textContent = "Purge"; b.dataset.agent = a.agent_id; b.addEventListener("click", () => purge(a.agent_id)); cell(tr, b); });
          $("agents-note").textContent = (c.more_agents ? c.more_agents + " more agents not listed. " : "") + c.unfiltered_pages + " pages without an agent filter." + (c.agents.length ? "" : " No agent's pages are held.");
          $("updated").textContent = "updated " + new Date().toLocaleTimeString();
          chart(s.per_second.requests, s.per_second.hits);
        }
        async function load() {
          try {
            const r = await fetch("/admin/status", { cache: "no-store", credentials: "omit" });
            if (!r.ok) throw new Error("HTTP " + r.status);
            render(await r.json()); $("error").hidden = true;
          } catch (e) { $("error").textContent = "Cannot read /admin/status: " + e.message; $("error").hidden = false; }
        }
        async function purge(agent) {
          const field = $("token"), result = $("purge-result"), token = field.value;
          field.value = "";
          if (!token) { result.textContent = "Type the admin token first."; field.focus(); return; }
          const target = "/admin/cache/purge" + (agent === null ? "" : "?agent_id=" + encodeURIComponent(agent));
          try {
            const r = await fetch(target, { method: "POST", cache: "no-store", credentials: "omit", headers: { Authorization: "Bearer " + token } });
            const body = await r.json().catch(() => null);
            if (r.ok && body) result.textContent = "Purged " + body.purged + (body.purged === 1 ? " page" : " pages") + (agent === null ? "." : " for " + agent + ".");
            else if (r.status === 401) result.textContent = "The token was refused.";
            else if (r.status === 404) result.textContent = "The admin API is off: ADMIN_TOKEN is not set.";
            else result.textContent = "The purge failed: HTTP " + r.status + ".";
          } catch (e) { result.textContent = "The purge failed: " + e.message; }
          load();
        }
        $("purge-all").addEventListener("click", () => purge(null));
        $("purge").addEventListener("submit", (e) => e.preventDefault());
        load(); setInterval(load, 2000);
        """#
}
