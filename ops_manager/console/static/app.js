/* ops-manager console: vanilla JS, no dependencies. Reads the JSON API of the server that
 * served this page, renders with DOM calls (never innerHTML with data), draws charts as
 * inline SVG, refreshes itself every few seconds. */
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const HEALTH = {
    healthy: { icon: "\u2714", word: "HEALTHY" },
    degraded: { icon: "\u25B2", word: "DEGRADED" },
    critical: { icon: "\u2716", word: "CRITICAL" },
    unknown: { icon: "?", word: "UNKNOWN" },
  };
  const OUTCOME = {
    delivered: { icon: "\u2714", word: "delivered" },
    retrying: { icon: "\u21BB", word: "retrying" },
    failed: { icon: "\u2716", word: "failed" },
    executed: { icon: "\u2714", word: "executed" },
    ambiguous: { icon: "?", word: "ambiguous" },
    execution_ambiguous: { icon: "?", word: "ambiguous" },
    execution_failed: { icon: "\u2716", word: "failed" },
    pending_operator_confirmation: { icon: "\u23F8", word: "pending" },
  };
  const PALETTE = ["#2457c5", "#b3261e", "#1f7a3d", "#8a5a00", "#6a3fb5", "#00727a", "#b0407a", "#4d5766"];
  const DASHES = ["", "6 3", "2 3", "8 3 2 3", "1 2", "10 4"];
  const SERIES_COLORS = { executed: "#1f7a3d", ambiguous: "#b07800", failed: "#b3261e" };

  const state = {
    selectedLoop: null,
    timer: null,
    busy: false,
    backlogSignature: "",
    lastBy: "",
    loopsSignature: "",
  };

  // --- helpers -------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined) continue;
      if (key === "text") node.textContent = value;
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) if (child) node.append(child);
    return node;
  }

  function $(selector) {
    return document.querySelector(selector);
  }

  function fmtSecs(value) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "\u2014";
    let s = Math.round(Number(value));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " m " + (s % 60) + " s";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " m";
    return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
  }

  function fmtPct(value) {
    if (value === null || value === undefined) return "\u2014";
    return Math.round(Number(value) * 1000) / 10 + " %";
  }

  function fmtTime(ts) {
    if (!ts) return "\u2014";
    return String(ts).replace("T", " ").replace("Z", " UTC");
  }

  function shortTime(ms) {
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, "0");
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }

  function clockSecs(ms) {
    return new Date(ms).toISOString().slice(11, 19);
  }

  function niceStep(raw) {
    const pow = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * pow >= raw) return m * pow;
    return 10 * pow;
  }

  function shortDate(ms) {
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, "0");
    return pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate());
  }

  function healthBadge(status) {
    const key = HEALTH[status] ? status : "unknown";
    const meta = HEALTH[key];
    return el(
      "span",
      { class: "badge " + key, dataset: { health: key } },
      el("span", { "aria-hidden": "true", text: meta.icon }),
      " " + meta.word
    );
  }

  function outcomeBadge(outcome, extra) {
    const meta = OUTCOME[outcome] || { icon: "\u2022", word: String(outcome || "unknown") };
    return el(
      "span",
      { class: "badge " + (outcome || "unknown"), dataset: { outcome: outcome || "unknown" } },
      el("span", { "aria-hidden": "true", text: meta.icon }),
      " " + meta.word + (extra ? " \u00B7 " + extra : "")
    );
  }

  function statusBadge(status) {
    const kind = status === "success" ? "success" : status === "partial_failure" || status === "skipped" ? "degraded" : "failed";
    const icon = kind === "success" ? "\u2714" : kind === "degraded" ? "\u25B2" : "\u2716";
    return el("span", { class: "badge " + kind, dataset: { status: status || "unknown" } }, el("span", { "aria-hidden": "true", text: icon }), " " + (status || "unknown"));
  }

  function codes(list) {
    if (!list || !list.length) return el("span", { class: "muted", text: "\u2014" });
    return el("span", {}, list.map((c) => el("span", { class: "code", text: c })));
  }

  function table(headers, rows, emptyText) {
    if (!rows.length) return el("p", { class: "empty", text: emptyText || "none" });
    return el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c)))))
      )
    );
  }

  async function api(path, options) {
    const response = await fetch(path, Object.assign({ credentials: "same-origin", cache: "no-store" }, options || {}));
    let body = null;
    try {
      body = await response.json();
    } catch (e) {
      body = null;
    }
    if (!response.ok) {
      const message = body && body.error ? body.error.message : "HTTP " + response.status;
      const err = new Error(message);
      err.status = response.status;
      err.body = body;
      throw err;
    }
    return body;
  }

  function showBanner(message) {
    const banner = $("#banner");
    if (message) {
      banner.textContent = message;
      banner.hidden = false;
    } else {
      banner.hidden = true;
      banner.textContent = "";
    }
  }

  // --- fleet ---------------------------------------------------------------------------
  function renderFleet(fleet) {
    $("#fleet-id").textContent = "fleet " + (fleet.fleetId || "default");
    $("#repo-path").textContent = fleet.repoPath || "";
    const posture = $("#posture");
    posture.replaceChildren();
    for (const key of ["healthy", "degraded", "critical", "unknown"]) {
      const n = (fleet.posture && fleet.posture[key]) || 0;
      const meta = HEALTH[key];
      posture.append(
        el(
          "div",
          { class: "card " + key + (n > 0 ? " nonzero" : ""), id: "posture-" + key, dataset: { count: n } },
          el("div", { class: "count", text: String(n) }),
          el("div", { class: "label" }, el("span", { "aria-hidden": "true", text: meta.icon + " " }), meta.word.toLowerCase())
        )
      );
    }
    const backlog = fleet.backlog || {};
    posture.append(
      el(
        "a",
        { class: "card backlog", href: "#backlog", id: "posture-backlog", dataset: { count: backlog.pendingCount || 0 } },
        el("div", { class: "count", text: String(backlog.pendingCount || 0) }),
        el("div", { class: "label", text: "pending intents (" + (backlog.manualBacklogCount || 0) + " manual-only)" })
      )
    );

    const summary = $("#fleet-summary");
    summary.replaceChildren();
    const f = fleet.fleet;
    if (f) {
      summary.append(
        el("span", { id: "fleet-status" }, "fleet reconcile ", statusBadge(f.status)),
        el("span", { class: "muted", text: "at " + fmtTime(f.updatedAt) + " (" + fmtSecs(f.durationSeconds) + ")" }),
        el("span", {}, "reason codes: ", codes(f.reasonCodes))
      );
    } else {
      summary.append(el("span", { class: "muted", text: "No fleet reconcile yet: posture from the loops' own health projections." }));
    }
    const a = fleet.autonomous || {};
    const mode = a.mode || fleet.policyMode;
    if (mode) {
      summary.append(el("span", { class: "muted", id: "policy-mode", text: "policy mode " + mode + (a.killSwitchActive ? " \u00B7 kill switch ON" : "") }));
    }
    const exceptions = $("#exceptions");
    exceptions.replaceChildren();
    const ex = fleet.exceptions || {};
    const groups = [
      ["criticalLoops", "critical"],
      ["degradedLoops", "degraded"],
      ["reconcileFailures", "reconcile failed"],
      ["skippedLoops", "skipped"],
    ];
    for (const [key, label] of groups) {
      const ids = ex[key] || [];
      if (!ids.length) continue;
      exceptions.append(
        el(
          "div",
          { class: "group", dataset: { exception: key } },
          el("strong", { text: label + ":" }),
          ids.map((id) => el("button", { type: "button", class: "loop-link", onclick: () => selectLoop(id), text: id }))
        )
      );
    }
    if (fleet.warnings && fleet.warnings.length) {
      exceptions.append(el("ul", { class: "warnings" }, fleet.warnings.map((w) => el("li", { text: w }))));
    }
    renderLoops(fleet.loops || []);
  }

  function renderLoops(loops) {
    const tbody = $("#loops-table tbody");
    tbody.replaceChildren();
    if (!loops.length) {
      tbody.append(el("tr", {}, el("td", { colspan: 8, class: "empty", text: "No loops found under .superloop/ (run reconcile first)." })));
      return;
    }
    for (const loop of loops) {
      const health = HEALTH[loop.healthStatus] ? loop.healthStatus : "unknown";
      const row = el(
        "tr",
        {
          class: "loop-row loop-" + health + (loop.loopId === state.selectedLoop ? " selected" : ""),
          dataset: { loopId: loop.loopId, health: health, lifecycle: loop.lifecycleState || "unknown" },
          tabindex: "0",
          onclick: () => selectLoop(loop.loopId),
          onkeydown: (e) => {
            if (e.key === "Enter") selectLoop(loop.loopId);
          },
        },
        el(
          "td",
          {},
          el("button", { type: "button", class: "loop-link", text: loop.loopId }),
          loop.critical ? el("span", { class: "flag critical-flag", title: "critical: needs attention" }, el("span", { "aria-hidden": "true", text: "\u26A0 " }), "CRITICAL") : null,
          loop.transport ? el("span", { class: "sub", text: loop.transport }) : null
        ),
        el(
          "td",
          { class: "lifecycle" },
          el("span", { text: loop.lifecycleState || "unknown" }),
          loop.lifecycleConfidence ? el("span", { class: "sub", text: "confidence " + loop.lifecycleConfidence }) : null,
          loop.runId ? el("span", { class: "sub mono", text: loop.runId + (loop.iteration !== null && loop.iteration !== undefined ? " #" + loop.iteration : "") }) : null
        ),
        el("td", { class: "health" }, healthBadge(health)),
        el("td", {}, codes(loop.healthReasonCodes), loop.statusError ? el("span", { class: "sub", text: loop.statusError }) : null),
        el("td", { class: "num" }, fmtSecs(loop.ingestLagSeconds)),
        el("td", { class: "num" }, fmtSecs(loop.heartbeatAgeSeconds !== null && loop.heartbeatAgeSeconds !== undefined ? loop.heartbeatAgeSeconds : loop.heartbeatLagSeconds)),
        el(
          "td",
          {},
          loop.lastReconcileStatus ? statusBadge(loop.lastReconcileStatus) : el("span", { class: "muted", text: "never" }),
          loop.lastReconcileAt ? el("span", { class: "sub", text: fmtSecs(loop.lastReconcileAgeSeconds) + " ago \u00B7 took " + fmtSecs(loop.lastReconcileDurationSeconds) }) : null,
          loop.lastReconcileFailureCode ? el("span", { class: "sub code", text: loop.lastReconcileFailureCode }) : null
        ),
        el(
          "td",
          {},
          loop.fleetReconcileStatus ? el("span", { text: loop.fleetReconcileStatus }) : el("span", { class: "muted", text: "\u2014" }),
          loop.fleetReasonCode ? el("span", { class: "sub code", text: loop.fleetReasonCode }) : null
        )
      );
      tbody.append(row);
    }
  }

  // --- drill-down ----------------------------------------------------------------------
  function selectLoop(loopId) {
    if (location.hash !== "#loop=" + encodeURIComponent(loopId)) {
      location.hash = "loop=" + encodeURIComponent(loopId);
    } else {
      applyHash();
    }
  }

  function applyHash() {
    const match = /^#loop=(.+)$/.exec(location.hash);
    if (!match && location.hash.length > 1) return; // a section link: keep the selection
    state.selectedLoop = match ? decodeURIComponent(match[1]) : null;
    document.querySelectorAll("#loops-table tbody tr.loop-row").forEach((tr) => {
      tr.classList.toggle("selected", tr.dataset.loopId === state.selectedLoop);
    });
    if (state.selectedLoop) {
      loadLoop(state.selectedLoop, true);
    } else {
      $("#drilldown").hidden = true;
    }
  }

  async function loadLoop(loopId, scroll) {
    try {
      const detail = await api("/api/loops/" + encodeURIComponent(loopId));
      if (state.selectedLoop !== loopId) return;
      renderDrilldown(detail);
      if (scroll) $("#drilldown").scrollIntoView({ block: "start" });
    } catch (err) {
      $("#drilldown").hidden = false;
      $("#drilldown-title").textContent = "Loop " + loopId;
      $("#drilldown-body").replaceChildren(el("p", { class: "empty", text: "Cannot load this loop: " + err.message }));
    }
  }

  function renderDrilldown(d) {
    const section = $("#drilldown");
    section.hidden = false;
    section.dataset.loopId = d.loopId;
    const row = d.row || {};
    const title = $("#drilldown-title");
    title.replaceChildren("Loop ", el("span", { class: "mono", text: d.loopId }), " ", healthBadge(row.healthStatus));
    const st = d.status || {};
    const health = st.health || {};
    const reasons = (health.reasons || []).map((r) => [el("span", { class: "code", text: r.code }), r.severity || "", r.metric || "", String(r.observed ?? ""), String(r.threshold ?? "")]);
    const lifecycle = st.lifecycle || {};
    const reconcile = st.reconcile || {};
    const control = st.control || {};
    const overview = el(
      "dl",
      { class: "kv" },
      el("dt", { text: "lifecycle" }), el("dd", { text: (lifecycle.state || "unknown") + (lifecycle.confidence ? " (" + lifecycle.confidence + ")" : "") }),
      el("dt", { text: "run" }), el("dd", { class: "mono", text: (lifecycle.runId || "\u2014") + (lifecycle.iteration !== null && lifecycle.iteration !== undefined ? " #" + lifecycle.iteration : "") }),
      el("dt", { text: "ingest lag" }), el("dd", { text: fmtSecs(row.ingestLagSeconds) }),
      el("dt", { text: "heartbeat age" }), el("dd", { text: fmtSecs(row.heartbeatAgeSeconds) + (row.lastHeartbeatAt ? " (last " + fmtTime(row.lastHeartbeatAt) + ")" : "") }),
      el("dt", { text: "last reconcile" }), el("dd", { text: (reconcile.lastStatus || "never") + " at " + fmtTime(reconcile.lastTimestamp) + " via " + (reconcile.lastTransport || "\u2014") }),
      el("dt", { text: "last control" }), el("dd", { text: control.lastIntent ? control.lastIntent + " \u2192 " + (control.lastStatus || "?") + " by " + (control.lastRequestedBy || "?") : "none" }),
      el("dt", { text: "profile" }), el("dd", { text: ((st.tuning || {}).appliedProfile || "\u2014") + " (recommended " + ((st.tuning || {}).recommendedProfile || "\u2014") + ")" })
    );
    const events = (d.events || []).map((e) => [fmtTime(e.timestamp), el("span", { class: "mono", text: e.event || "" }), e.role || "", e.status || "", e.iteration ?? "", e.message || ""]);
    const escalations = (d.escalations || []).map((e) => [fmtTime(e.timestamp), el("span", { class: "code", text: e.category || "" }), healthBadge(e.healthStatus), codes(e.reasonCodes)]);
    const deliveries = (d.deliveries || []).map((r) => [
      fmtTime(r.timestamp),
      el("span", {}, el("span", { class: "code", text: r.category || "" }), r.action ? " " + r.action : ""),
      r.severity || "",
      el(
        "div",
        { class: "sinks" },
        (r.sinks || []).map((s) =>
          el(
            "span",
            { class: "sink", dataset: { sink: s.id, outcome: s.outcome }, title: s.message || "" },
            el("span", { class: "mono", text: s.id + " " }),
            outcomeBadge(s.outcome, [s.reasonCode, s.httpStatus ? "HTTP " + s.httpStatus : null].filter(Boolean).join(" ")),
          )
        ),
        (r.sinks || []).length ? null : el("span", { class: "muted", text: (r.status || "") + (r.reasonCode ? " \u00B7 " + r.reasonCode : "") })
      ),
    ]);
    const outbox = (d.outbox || []).map((o) => [
      el("span", { class: "mono", text: o.sinkId }),
      outcomeBadge(o.outcome, o.outboxStatus !== o.outcome ? o.outboxStatus : ""),
      (o.category || "") + (o.action ? " " + o.action : ""),
      String(o.attempts ?? ""),
      o.reasonCode || "",
      fmtTime(o.nextAttemptAt),
    ]);
    const passes = (d.reconciles || []).map((r) => [fmtTime(r.timestamp), r.status || "", String(r.eventsIngested ?? ""), fmtSecs(r.durationSeconds), r.healthStatus || "", r.failureCode || ""]);
    $("#drilldown-body").replaceChildren(
      ...[d.statusError ? el("p", { class: "empty", text: d.statusError }) : null].filter(Boolean),
      el(
        "div",
        { class: "dd-grid" },
        el("div", {}, el("h3", { text: "Status" }), overview),
        el("div", {}, el("h3", { text: "Health reasons" }), table(["code", "severity", "metric", "observed", "threshold"], reasons, "no health reasons"))
      ),
      el("h3", { text: "Alert deliveries (per sink)" }),
      el("div", { id: "dd-deliveries" }, table(["time", "category", "severity", "sinks"], deliveries, "no alert deliveries recorded")),
      el("h3", { text: "Alert outbox" }),
      table(["sink", "state", "notification", "attempts", "last reason", "next attempt"], outbox, "outbox empty"),
      el(
        "div",
        { class: "dd-grid" },
        el("div", {}, el("h3", { text: "Escalations" }), el("div", { id: "dd-escalations" }, table(["time", "category", "health", "reasons"], escalations, "no escalations"))),
        el("div", {}, el("h3", { text: "Reconcile passes" }), table(["time", "status", "events", "took", "health", "failure"], passes, "no reconcile passes"))
      ),
      el("h3", { text: "Recent events" }),
      el("div", { id: "dd-events" }, table(["time", "event", "role", "status", "iter", "message"], events, "no events"))
    );
  }

  // --- charts ----------------------------------------------------------------------------
  function lineChart(container, series, opts) {
    const W = 560, H = 210, L = 46, R = 12, T = 10, B = 28;
    const all = [];
    series.forEach((s) => s.points.forEach((p) => {
      const x = Date.parse(p[0]);
      if (!Number.isNaN(x) && typeof p[1] === "number") all.push([x, p[1]]);
    }));
    container.replaceChildren();
    if (!all.length) {
      container.append(el("p", { class: "empty", text: opts.empty || "no data yet" }));
      return;
    }
    let xMin = Math.min(...all.map((p) => p[0]));
    let xMax = Math.max(...all.map((p) => p[0]));
    if (xMax === xMin) { xMin -= 60000; xMax += 60000; }
    let yMax = opts.yMax !== undefined ? opts.yMax : Math.max(...all.map((p) => p[1]));
    if (!(yMax > 0)) yMax = 1;
    const step = opts.yMax !== undefined ? yMax / 4 : niceStep(yMax / 4);
    if (opts.yMax === undefined) yMax = Math.ceil(yMax / step - 1e-9) * step;
    const yMin = 0;
    const sx = (x) => L + ((x - xMin) / (xMax - xMin)) * (W - L - R);
    const sy = (y) => T + (1 - (y - yMin) / (yMax - yMin)) * (H - T - B);
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": opts.label || "chart" });
    const tickFmt = opts.tick || ((v) => String(Math.round(v * 100) / 100));
    for (let v = 0; v <= yMax + 1e-9; v += step) {
      const y = sy(v);
      root.append(svg("line", { class: "grid", x1: L, x2: W - R, y1: y, y2: y }));
      root.append(svg("text", { x: L - 4, y: y + 3, "text-anchor": "end", text: tickFmt(v) }));
    }
    const span = xMax - xMin;
    const xFmt = span > 36 * 3600 * 1000 ? shortDate : span < 10 * 60 * 1000 ? clockSecs : shortTime;
    for (let i = 0; i <= 3; i++) {
      const x = xMin + (span * i) / 3;
      root.append(svg("text", { x: sx(x), y: H - 8, "text-anchor": i === 0 ? "start" : i === 3 ? "end" : "middle", text: xFmt(x) }));
    }
    root.append(svg("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
    root.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    const legend = el("div", { class: "legend" });
    series.forEach((s, i) => {
      const color = SERIES_COLORS[s.name] || PALETTE[i % PALETTE.length];
      const dash = DASHES[i % DASHES.length];
      const pts = s.points
        .map((p) => [Date.parse(p[0]), p[1]])
        .filter((p) => !Number.isNaN(p[0]) && typeof p[1] === "number")
        .sort((a, b) => a[0] - b[0]);
      if (!pts.length) return;
      const group = svg("g", { "data-series": s.name });
      if (pts.length > 1) {
        group.append(svg("polyline", {
          points: pts.map((p) => sx(p[0]).toFixed(1) + "," + sy(p[1]).toFixed(1)).join(" "),
          fill: "none", stroke: color, "stroke-width": 2, "stroke-dasharray": dash || null,
        }));
      }
      pts.forEach((p) => {
        const dot = svg("circle", { cx: sx(p[0]).toFixed(1), cy: sy(p[1]).toFixed(1), r: 3, fill: color });
        dot.append(svg("title", { text: s.name + ": " + (opts.fmt ? opts.fmt(p[1]) : p[1]) + " at " + new Date(p[0]).toISOString() }));
        group.append(dot);
      });
      root.append(group);
      const swatch = svg("svg", { viewBox: "0 0 28 10" }, svg("line", { x1: 1, x2: 27, y1: 5, y2: 5, stroke: color, "stroke-width": 2, "stroke-dasharray": dash || null }), svg("circle", { cx: 14, cy: 5, r: 3, fill: color }));
      legend.append(el("span", {}, swatch, " " + s.name));
    });
    container.append(root, legend);
    if (opts.note) container.append(el("div", { class: "chart-note", text: opts.note }));
  }

  function renderSlo(slo) {
    lineChart($("#chart-latency .chart-body"), slo.reconcileLatency.series, {
      label: "reconcile latency in seconds per loop",
      fmt: (v) => (Math.round(v * 10) / 10) + " s",
      tick: (v) => (Math.round(v * 100) / 100) + " s",
      note: "Duration of each reconcile pass (per-loop TEL/reconcile.jsonl; fleet reconcile telemetry).",
    });
    lineChart($("#chart-lag .chart-body"), slo.ingestLag.series, {
      label: "ingest lag in seconds per loop",
      fmt: (v) => fmtSecs(v),
      tick: (v) => (v >= 120 ? fmtSecs(v) : Math.round(v * 100) / 100 + " s"),
      note: "health.metrics.ingestLagSeconds per supervise tick (fleet/telemetry/supervise*.jsonl; without a supervisor: each reconcile pass the console has seen).",
    });
    const d = slo.deliverySuccess;
    const totals = d.totals || {};
    lineChart($("#chart-delivery .chart-body"), d.series, {
      label: "alert delivery success rate",
      yMax: 1,
      fmt: (v) => Math.round(v * 100) + "%",
      tick: (v) => Math.round(v * 100) + "%",
      empty: "no alert deliveries yet",
      note: "overall " + fmtPct(d.rate) + " \u00B7 delivered " + (totals.delivered || 0) + " \u00B7 retrying " + (totals.retrying || 0) + " \u00B7 failed " + (totals.failed || 0) +
        ((d.bySink || []).length ? " \u00B7 " + d.bySink.map((s) => s.id + ": " + s.delivered + "/" + (s.delivered + s.retrying + s.failed)).join(", ") : ""),
    });
    const a = slo.autonomousOutcomes;
    const at = a.totals || {};
    const mt = a.manualTotals || {};
    lineChart($("#chart-autonomous .chart-body"), a.series, {
      label: "autonomous handoff outcome rates",
      yMax: 1,
      fmt: (v) => Math.round(v * 100) + "%",
      tick: (v) => Math.round(v * 100) + "%",
      empty: "no autonomous executions yet",
      note: "autonomous: attempted " + (at.attempted || 0) + ", executed " + (at.executed || 0) + ", ambiguous " + (at.ambiguous || 0) + ", failed " + (at.failed || 0) +
        " \u00B7 manual confirmations: " + (mt.executed || 0) + " executed of " + (mt.attempted || 0),
    });
  }

  // --- backlog ---------------------------------------------------------------------------
  function renderBacklog(b) {
    const pending = b.pending || [];
    $("#backlog-count").textContent = String(pending.length);
    $("#backlog-meta").textContent = b.available
      ? "Handoff plan " + (b.traceId || "") + " \u00B7 mode " + (b.mode || "advisory") + " \u00B7 updated " + fmtTime(b.updatedAt) + " \u00B7 " + (b.manualBacklogCount || 0) + " manual-only"
      : b.message || "No handoff plan yet.";
    const signature = JSON.stringify(pending.map((p) => [p.intentId, p.status]));
    if (signature !== state.backlogSignature) {
      state.backlogSignature = signature;
      const tbody = $("#backlog-table tbody");
      tbody.replaceChildren();
      if (!pending.length) {
        tbody.append(el("tr", {}, el("td", { colspan: 6, class: "empty", text: "Nothing waits for an operator." })));
      }
      for (const intent of pending) tbody.append(backlogRow(intent));
    }
    const handled = $("#handled-table tbody");
    handled.replaceChildren();
    const recent = b.recent || [];
    if (!recent.length) handled.append(el("tr", {}, el("td", { colspan: 6, class: "empty", text: "none yet" })));
    for (const intent of recent) {
      const ex = intent.execution || {};
      handled.append(
        el(
          "tr",
          { dataset: { intentId: intent.intentId, status: intent.status } },
          el("td", { class: "mono", text: intent.intentId }),
          el("td", { text: intent.loopId || "" }),
          el("td", {}, outcomeBadge(intent.status)),
          el("td", { text: ex.requestedBy || "" }),
          el("td", { text: fmtTime(ex.executedAt) }),
          el("td", {}, ex.reasonCode ? el("span", { class: "code", text: ex.reasonCode }) : "")
        )
      );
    }
  }

  function backlogRow(intent) {
    const byInput = el("input", { type: "text", class: "by", name: "by", placeholder: "your name", required: true, maxlength: 128, "aria-label": "confirmed by", value: state.lastBy || null });
    const noteInput = el("input", { type: "text", class: "note", name: "note", placeholder: "note (optional)", maxlength: 1000, "aria-label": "note" });
    const button = el("button", { type: "submit", class: "primary confirm" }, "Confirm ", intent.intent || "");
    const form = el("form", { class: "confirm-form", dataset: { intentId: intent.intentId } }, byInput, noteInput, button);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      confirmIntent(intent, byInput, noteInput, button);
    });
    return el(
      "tr",
      { class: "backlog-row", dataset: { intentId: intent.intentId, loopId: intent.loopId } },
      el("td", { class: "mono", text: intent.intentId }),
      el("td", {}, el("button", { type: "button", class: "loop-link", onclick: () => selectLoop(intent.loopId), text: intent.loopId })),
      el("td", {}, el("strong", { text: intent.intent || "" }), el("span", { class: "sub", text: intent.transport || "local" })),
      el("td", {}, el("span", { class: "code", text: intent.category || "" }), " ", intent.severity ? healthBadgeForSeverity(intent.severity) : null, intent.rationale ? el("span", { class: "sub", text: intent.rationale }) : null),
      el("td", {}, intent.manualOnly ? el("span", { class: "pill", text: "manual only" }) : el("span", { class: "pill", text: "auto eligible" }), el("span", { class: "sub" }, codes(intent.autonomousReasons))),
      el("td", {}, form)
    );
  }

  function healthBadgeForSeverity(severity) {
    const key = severity === "critical" ? "critical" : severity === "warning" ? "degraded" : "unknown";
    return el("span", { class: "badge " + key }, el("span", { "aria-hidden": "true", text: HEALTH[key].icon }), " " + severity);
  }

  async function confirmIntent(intent, byInput, noteInput, button) {
    const by = byInput.value.trim();
    const outcome = $("#confirm-outcome");
    if (!by) {
      byInput.focus();
      outcome.hidden = false;
      outcome.className = "outcome bad";
      outcome.textContent = "Enter who confirms this intent (by).";
      return;
    }
    state.lastBy = by;
    button.disabled = true;
    outcome.hidden = false;
    outcome.className = "outcome";
    outcome.dataset.state = "running";
    outcome.textContent = "Executing " + intent.intent + " on " + intent.loopId + "\u2026";
    try {
      const result = await api("/api/backlog/" + encodeURIComponent(intent.intentId) + "/confirm", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ by: by, note: noteInput.value.trim() || null }),
      });
      const o = result.outcome || {};
      const status = o.status || (result.intent && result.intent.status) || "unknown";
      outcome.className = "outcome " + (status === "executed" ? "ok" : status === "ambiguous" ? "warn" : "bad");
      outcome.dataset.state = status;
      outcome.dataset.intentId = intent.intentId;
      outcome.replaceChildren(
        outcomeBadge(status), " ",
        el("span", { class: "mono", text: intent.intentId }),
        " \u2014 " + (o.reasonCode || "") + (o.controlExitCode !== undefined ? " (control exit " + o.controlExitCode + ")" : "") + " by " + by
      );
    } catch (err) {
      outcome.className = "outcome bad";
      outcome.dataset.state = "error";
      outcome.textContent = "Confirm failed: " + err.message;
    } finally {
      button.disabled = false;
      state.backlogSignature = "";
      refresh();
    }
  }

  // --- refresh loop ----------------------------------------------------------------------
  async function refresh() {
    if (state.busy) return;
    state.busy = true;
    try {
      const [fleet, slo, backlog] = await Promise.all([api("/api/fleet"), api("/api/slo"), api("/api/backlog")]);
      renderFleet(fleet);
      renderSlo(slo);
      renderBacklog(backlog);
      if (state.selectedLoop) await loadLoop(state.selectedLoop, false);
      showBanner(null);
      $("#refresh-status").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
      document.body.dataset.loaded = "true";
      document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    } catch (err) {
      showBanner(err.status === 401 ? "Not authorised: open this page as /?token=<token>." : "Cannot reach the console API: " + err.message);
      $("#refresh-status").textContent = "refresh failed";
    } finally {
      state.busy = false;
    }
  }

  function schedule() {
    if (state.timer) clearInterval(state.timer);
    state.timer = $("#auto-refresh").checked ? setInterval(refresh, REFRESH_MS) : null;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#auto-refresh").addEventListener("change", schedule);
    $("#refresh-now").addEventListener("click", refresh);
    $("#drilldown-close").addEventListener("click", () => {
      history.replaceState(null, "", location.pathname);
      applyHash();
    });
    window.addEventListener("hashchange", applyHash);
    const match = /^#loop=(.+)$/.exec(location.hash);
    state.selectedLoop = match ? decodeURIComponent(match[1]) : null;
    refresh();
    schedule();
  });
})();
