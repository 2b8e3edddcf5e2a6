// The /model page: each version's card, held-out evaluation and training curves, and the live
// per-version figures with the promote guard's verdict. Drawn as plain SVG from the page's own
// JSON (/api/v1/model/versions once, /api/v1/model/live every few seconds); the
// Content-Security-Policy allows no other script, and none is needed.
"use strict";

(function () {
  const root = document.getElementById("model-page");
  const SVG = "http://www.w3.org/2000/svg";
  const sampleSeconds = Math.max(1, Number(root.dataset.sampleSeconds) || 2);

  // ---- small helpers -------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined) node.setAttribute(name, value);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  }

  const isNumber = (x) => typeof x === "number" && Number.isFinite(x);
  // A no-break space before "%": a figure never wraps away from its unit.
  const PERCENT = "\u00a0%";
  const pct = (x, digits = 2) => (isNumber(x) ? (x * 100).toFixed(digits) + PERCENT : "–");
  const count = (x) => (isNumber(x) ? x.toLocaleString("en-US") : "–");
  const roleClass = (role) => (role === "stable" || role === "canary" ? "c-" + role : "c-other");

  function describedList(pairs) {
    const list = el("dl", { class: "facts" });
    for (const [term, value, id] of pairs) {
      if (value === null || value === undefined || value === "") continue;
      list.append(el("div", { "data-fact": id || null }, el("dt", {}, term), el("dd", {}, value)));
    }
    return list;
  }

  // ---- the model card ------------------------------------------------------------------------

  function cardSection(card) {
    const section = el("section", { class: "part card-part" }, el("h4", {}, "Model card"));
    const digits = (card.data && card.data.digits) || {};
    const splits = ["train", "validation", "test"]
      .filter((s) => isNumber(digits[s]))
      .map((s) => count(digits[s]) + " " + s)
      .join(", ");
    const commit = card.git_commit ? card.git_commit.slice(0, 12) : null;
    section.append(
      describedList([
        ["Model", card.model_name],
        ["Trained", card.created ? card.created.replace("T", " ").replace("+00:00", " UTC") : null, "created"],
        ["Commit", commit, "commit"],
        ["Data", [card.data && card.data.source, splits].filter(Boolean).join(": ") || null, "data"],
      ]),
    );
    const given = card.training_parameters || {};
    const parameters = Object.entries(given).map(([name, value]) => [name.replaceAll("_", " "), String(value)]);
    if (parameters.length) {
      // The few that decide the most in the summary line; all of them one click away.
      const headline = [
        ["epochs", " epochs"], ["batch_size", "batch size "], ["learning_rate", "learning rate "], ["seed", "seed "],
      ]
        .filter(([name]) => given[name] !== undefined)
        .map(([name, words]) => (name === "epochs" ? given[name] + words : words + given[name]))
        .join(" · ");
      section.append(
        el("details", { class: "parameters" },
          el("summary", {}, el("strong", {}, "Training parameters"), " ", el("span", { class: "muted" }, headline)),
          describedList(parameters),
        ),
      );
    }
    const gate = card.gate || {};
    const gateLines = [
      ["Validation accuracy", isNumber(gate.validation_accuracy) ? pct(gate.validation_accuracy) + " on " + count(gate.validation_digits) + " digits" : null, "gate-accuracy"],
      ["Minimum to publish", isNumber(gate.min_accuracy) ? pct(gate.min_accuracy) : null],
      [
        "Compared with",
        gate.compared_with_version !== null && gate.compared_with_version !== undefined
          ? "v" + gate.compared_with_version + " (" + pct(gate.compared_with_accuracy) + "), at most " + pct(gate.max_regression) + " worse"
          : "nothing published before",
      ],
      ["PNG path agrees", isNumber(gate.image_bytes_agreement) ? pct(gate.image_bytes_agreement, 1) : null],
      ["Forced", gate.forced ? "yes (--force)" : null],
    ];
    section.append(el("h5", {}, "Exporter's gate"), describedList(gateLines));
    for (const note of gate.notes || []) section.append(el("p", { class: "small muted" }, note));
    return section;
  }

  // ---- held-out evaluation -------------------------------------------------------------------

  function heatMap(matrix) {
    const cell = 26, left = 34, top = 30, size = cell * 10;
    const chart = svg("svg", {
      class: "heatmap", viewBox: `0 0 ${left + size + 4} ${top + size + 4}`, role: "img",
      "aria-label": "Confusion matrix: rows are the true digit, columns the predicted one",
    });
    chart.append(
      svg("text", { x: left + size / 2, y: 10, class: "axis-title", "text-anchor": "middle" }, "predicted"),
      svg("text", { x: 8, y: top + size / 2, class: "axis-title", "text-anchor": "middle", transform: `rotate(-90 8 ${top + size / 2})` }, "true"),
    );
    for (let d = 0; d < 10; d++) {
      chart.append(
        svg("text", { x: left + d * cell + cell / 2, y: top - 6, class: "tick", "text-anchor": "middle" }, String(d)),
        svg("text", { x: left - 8, y: top + d * cell + cell / 2 + 4, class: "tick", "text-anchor": "end" }, String(d)),
      );
    }
    matrix.forEach((row, truth) => {
      const rowTotal = row.reduce((a, b) => a + b, 0) || 1;
      row.forEach((value, predicted) => {
        const share = value / rowTotal;
        const hit = truth === predicted;
        const group = svg("g", { class: "cell", "data-true": truth, "data-predicted": predicted, "data-count": value });
        group.append(
          svg("rect", {
            x: left + predicted * cell + 1, y: top + truth * cell + 1, width: cell - 2, height: cell - 2, rx: 3,
            class: hit ? "hit" : value ? "miss" : "empty",
            "fill-opacity": value ? (hit ? 0.25 + 0.75 * share : Math.min(1, 0.18 + 4 * share)).toFixed(3) : null,
          }),
          svg("title", {}, `true ${truth}, predicted ${predicted}: ${value} digits (${(share * 100).toFixed(1)} % of the ${truth}s)`),
        );
        if (value) {
          group.append(
            svg("text", {
              x: left + predicted * cell + cell / 2, y: top + truth * cell + cell / 2 + 4, "text-anchor": "middle",
              class: "cell-count" + (hit && share > 0.5 ? " on-dark" : ""),
            }, String(value)),
          );
        }
        chart.append(group);
      });
    });
    return chart;
  }

  function classBars(perClass) {
    const rowHeight = 24, left = 18, width = 260, barWidth = width - left - 50, top = 4;
    const chart = svg("svg", {
      class: "class-bars", viewBox: `0 0 ${width} ${top + rowHeight * 10 + 4}`, role: "img",
      "aria-label": "Precision and recall per digit",
    });
    perClass.forEach((row, i) => {
      const y = top + i * rowHeight;
      const group = svg("g", { class: "class-row", "data-digit": row.digit, "data-precision": row.precision, "data-recall": row.recall });
      group.append(
        svg("title", {}, `digit ${row.digit}: precision ${pct(row.precision, 1)}, recall ${pct(row.recall, 1)} (${row.support} digits)`),
        svg("text", { x: 6, y: y + 14, class: "tick" }, String(row.digit)),
        svg("rect", { x: left, y: y + 2, width: barWidth, height: 9, rx: 2, class: "track" }),
        svg("rect", { x: left, y: y + 12, width: barWidth, height: 9, rx: 2, class: "track" }),
        svg("rect", { x: left, y: y + 2, width: (row.precision || 0) * barWidth, height: 9, rx: 2, class: "precision" }),
        svg("rect", { x: left, y: y + 12, width: (row.recall || 0) * barWidth, height: 9, rx: 2, class: "recall" }),
        svg("text", { x: left + barWidth + 4, y: y + 10, class: "bar-number" }, pct(row.precision, 1)),
        svg("text", { x: left + barWidth + 4, y: y + 20, class: "bar-number" }, pct(row.recall, 1)),
      );
      chart.append(group);
    });
    return chart;
  }

  function gallery(evaluation) {
    const list = el("ol", { class: "mistakes" });
    for (const m of evaluation.mistakes) {
      list.append(
        el("li", { class: "mistake", "data-index": m.index, "data-label": m.label, "data-prediction": m.prediction, "data-confidence": m.confidence },
          el("img", { src: m.image, width: 56, height: 56, class: "digit", alt: `test digit #${m.index}, a ${m.label} read as ${m.prediction}` }),
          el("span", { class: "mistake-text" }, el("strong", {}, String(m.prediction)), ` for ${m.label}`),
          el("span", { class: "mistake-confidence" }, pct(m.confidence, 1)),
        ),
      );
    }
    return list;
  }

  function evaluationSection(evaluation) {
    const section = el("section", { class: "part evaluation" }, el("h4", {}, "On digits it never saw"));
    const interval = evaluation.interval || {};
    section.append(
      el("p", { class: "accuracy" },
        el("span", { class: "accuracy-value" }, pct(evaluation.accuracy)),
        el("span", { class: "accuracy-text" },
          `accuracy on ${count(evaluation.digits)} held-out ${evaluation.split} digits (${count(evaluation.correct)} right)`),
      ),
      el("p", { class: "accuracy-interval small muted" },
        `95${PERCENT} ${interval.method === "wilson" ? "Wilson score" : interval.method} interval: ${pct(interval.low)} – ${pct(interval.high)}`),
      el("div", { class: "eval-figures" },
        el("figure", {}, el("figcaption", {}, "Confusion matrix"), heatMap(evaluation.confusion_matrix)),
        el("figure", {},
          el("figcaption", {}, "Precision and recall per digit"),
          el("p", { class: "legend small" }, el("span", { class: "swatch precision" }), " precision ", el("span", { class: "swatch recall" }), " recall"),
          classBars(evaluation.per_class),
        ),
      ),
      el("h5", {}, "Mistakes, most confident first"),
      el("p", { class: "small muted mistakes-count" },
        evaluation.mistakes_total === evaluation.mistakes.length
          ? `all ${count(evaluation.mistakes_total)} misclassified test digits: prediction for true label, confidence`
          : `the ${evaluation.mistakes.length} most confident of ${count(evaluation.mistakes_total)} misclassified test digits: prediction for true label, confidence`),
      gallery(evaluation),
    );
    return section;
  }

  // ---- training curves -----------------------------------------------------------------------

  function curveChart(epochs, keys, exported, asPercent, label) {
    const width = 300, height = 160, left = 40, right = 8, top = 22, bottom = 24;
    const values = epochs.flatMap((e) => keys.map((k) => e[k])).filter(isNumber);
    let low = Math.min(...values), high = Math.max(...values);
    if (asPercent) { low = Math.max(0, Math.floor(low * 20) / 20); high = Math.min(1, Math.ceil(high * 20) / 20); }
    if (high - low < 1e-9) { high = low + 1; }
    const first = epochs[0].epoch, last = epochs[epochs.length - 1].epoch;
    const x = (e) => left + (last === first ? (width - left - right) / 2 : ((e - first) / (last - first)) * (width - left - right));
    const y = (v) => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
    const chart = svg("svg", { class: "curve", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label });
    for (const v of [low, (low + high) / 2, high]) {
      chart.append(
        svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }),
        svg("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", class: "tick" }, asPercent ? (v * 100).toFixed(0) + "%" : v.toFixed(2)),
      );
    }
    const ticks = epochs.length <= 12 ? epochs.map((e) => e.epoch) : [first, Math.round((first + last) / 2), last];
    for (const e of ticks) chart.append(svg("text", { x: x(e), y: height - 8, "text-anchor": "middle", class: "tick" }, String(e)));
    if (isNumber(exported)) {
      chart.append(
        svg("line", { x1: x(exported), x2: x(exported), y1: top, y2: height - bottom, class: "exported", "data-epoch": exported }),
        // Above the plot, so it never sits on a line.
        svg("text", { x: Math.min(x(exported), width - right), y: top - 8, "text-anchor": x(exported) > width / 2 ? "end" : "start", class: "exported-label" }, `exported: epoch ${exported}`),
      );
    }
    keys.forEach((key) => {
      const points = epochs.filter((e) => isNumber(e[key]));
      if (!points.length) return;
      const d = points.map((e, i) => (i ? "L" : "M") + x(e.epoch).toFixed(1) + " " + y(e[key]).toFixed(1)).join(" ");
      chart.append(svg("path", { d, class: "line " + (key.startsWith("val_") ? "validation" : "train"), "data-key": key }));
      for (const e of points) chart.append(svg("circle", { cx: x(e.epoch), cy: y(e[key]), r: 2.5, class: "dot " + (key.startsWith("val_") ? "validation" : "train") }));
    });
    return chart;
  }

  function trainingSection(training) {
    const section = el("section", { class: "part training" }, el("h4", {}, "How it learned"));
    section.append(
      el("p", { class: "legend small" }, el("span", { class: "swatch train" }), " training ", el("span", { class: "swatch validation" }), " validation · by epoch"),
      el("div", { class: "curves" },
        el("figure", {}, el("figcaption", {}, "Loss"), curveChart(training.epochs, ["loss", "val_loss"], training.exported_epoch, false, "Loss per epoch")),
        el("figure", {}, el("figcaption", {}, "Accuracy"), curveChart(training.epochs, ["accuracy", "val_accuracy"], training.exported_epoch, true, "Accuracy per epoch")),
      ),
    );
    return section;
  }

  // ---- one version ---------------------------------------------------------------------------

  function versionArticle(view) {
    const article = el("article", { class: "card version " + roleClass(view.role), "data-version": view.version, "data-role": view.role },
      el("h3", {}, el("span", { class: "version-number" }, "v" + view.version), " ", el("span", { class: "role " + roleClass(view.role) }, view.role)),
    );
    if (view.missing.length) {
      article.append(el("ul", { class: "missing" }, ...view.missing.map((line) => el("li", {}, line))));
    }
    if (view.card) article.append(cardSection(view.card));
    if (view.evaluation) article.append(evaluationSection(view.evaluation));
    if (view.training) article.append(trainingSection(view.training));
    return article;
  }

  function describeRollout(body) {
    const r = body.rollout;
    if (r.policy === "labels") {
      return r.canary !== null && r.canary !== undefined
        ? `stable v${r.stable} answers ${100 - r.canary_percent}${PERCENT} of predicts, canary v${r.canary} ${r.canary_percent}${PERCENT}`
        : `stable v${r.stable} answers every predict; no canary`;
    }
    return r.summary;
  }

  async function loadVersions() {
    const answer = await fetch(root.dataset.versionsUrl, { headers: { Accept: "application/json" } });
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.error || "HTTP " + answer.status);
    document.getElementById("rollout-summary").textContent = describeRollout(body);
    const note = document.getElementById("page-note");
    note.hidden = !body.note;
    note.textContent = body.note || "";
    const container = document.getElementById("versions");
    container.replaceChildren(...body.versions.map(versionArticle));
    container.classList.toggle("two", body.versions.length > 1);
    container.setAttribute("data-loaded", "true");
    performance.mark("model-versions-drawn"); // how long the page takes to be useful (make bench-model-page)
  }

  // ---- live figures --------------------------------------------------------------------------

  const FIGURES = {
    rps: { lines: [["rps", ""]], format: (v) => v.toFixed(1) + " /s" },
    error_rate: { lines: [["error_rate", ""]], format: (v) => (v * 100).toFixed(1) + PERCENT, ceiling: 0.05 },
    latency: { lines: [["p95_ms", ""], ["p50_ms", " thin"]], format: (v) => v.toFixed(1) + " ms" },
    mean_confidence: { lines: [["mean_confidence", ""]], format: (v) => (v * 100).toFixed(1) + PERCENT, floor: 0.5, top: 1 },
  };

  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  function drawLive(figure, versions, now) {
    const spec = FIGURES[figure.dataset.figure];
    const chart = figure.querySelector("svg");
    const width = 320, height = 120, left = 44, right = 6, top = 8, bottom = 18;
    const span = Math.max(30, Math.min(300, ...versions.map((v) => (v.series.length ? now - v.series[0].t : 30))));
    const start = now - span;
    const values = versions.flatMap((v) => v.series.flatMap((p) => spec.lines.map(([key]) => p[key]))).filter(isNumber);
    let low = 0;
    let high = niceCeiling(Math.max(spec.ceiling || 0, ...values, 0) * 1.1);
    if (spec.top) {
      high = spec.top;
      low = Math.min(spec.floor, ...values.map((v) => Math.floor(v * 10) / 10));
    }
    const x = (t) => left + ((t - start) / span) * (width - left - right);
    const y = (v) => top + (1 - (v - low) / (high - low || 1)) * (height - top - bottom);
    chart.replaceChildren();
    for (const v of [low, (low + high) / 2, high]) {
      chart.append(
        svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }),
        svg("text", { x: left - 4, y: y(v) + 4, "text-anchor": "end", class: "tick" }, spec.format(v)),
      );
    }
    chart.append(
      svg("text", { x: left, y: height - 4, class: "tick" }, "-" + Math.round(span) + " s"),
      svg("text", { x: width - right, y: height - 4, "text-anchor": "end", class: "tick" }, "now"),
    );
    const lastValues = [];
    let points = 0;
    for (const version of versions) {
      for (const [key, style] of spec.lines) {
        const shown = version.series.filter((p) => p.t >= start && isNumber(p[key]));
        points += shown.length;
        if (!shown.length) continue;
        const d = shown.map((p, i) => (i ? "L" : "M") + x(p.t).toFixed(1) + " " + y(Math.max(low, p[key])).toFixed(1)).join(" ");
        chart.append(svg("path", { d, class: "series " + roleClass(version.role) + style, "data-version": version.version, "data-key": key }));
        if (shown.length === 1) chart.append(svg("circle", { cx: x(shown[0].t), cy: y(shown[0][key]), r: 2.5, class: "series-dot " + roleClass(version.role) }));
        if (!style) lastValues.push(`v${version.version}: ${spec.format(shown[shown.length - 1][key])}`);
      }
    }
    figure.dataset.points = String(points);
    figure.querySelector(".last").textContent = lastValues.join(" · ") || "no predictions answered yet";
  }

  function drawGuard(guard) {
    const box = document.getElementById("guard");
    box.replaceChildren();
    box.className = "guard " + (!guard.applies ? "idle" : guard.allowed ? "go" : "hold");
    box.dataset.allowed = guard.applies ? String(guard.allowed) : "";
    box.append(el("p", { class: "guard-summary" }, el("strong", {}, "Promote guard: "), guard.summary));
    if (guard.applies) {
      box.append(
        el("ul", { class: "comparisons" },
          ...guard.comparisons.map((c) => el("li", { class: c.passed ? "passed" : "failed", "data-figure": c.figure }, (c.passed ? "✓ " : "✗ ") + c.text)),
        ),
      );
    }
    const p = guard.policy;
    box.append(el("p", { class: "small muted" },
      `Rule: at least ${p.min_canary_requests} canary answers; error rate at most ${(p.max_error_rate_increase * 100).toFixed(1)} points and p95 at most ${p.max_p95_increase_ms} ms above stable's (totals since this web UI started).`));
  }

  function drawLegend(versions) {
    const legend = document.getElementById("live-legend");
    legend.replaceChildren(...versions.map((v) =>
      el("span", { class: "legend-item" }, el("span", { class: "swatch " + roleClass(v.role) }), `v${v.version}${v.role ? " " + v.role : ""}`)));
  }

  async function refreshLive() {
    const status = document.getElementById("live-status");
    try {
      const answer = await fetch(root.dataset.liveUrl, { headers: { Accept: "application/json" } });
      const body = await answer.json();
      if (!answer.ok) throw new Error(body.error || "HTTP " + answer.status);
      drawGuard(body.guard);
      drawLegend(body.versions);
      document.querySelectorAll("#live-charts figure.live").forEach((figure) => drawLive(figure, body.versions, body.now));
      if (!performance.getEntriesByName("model-live-drawn").length) performance.mark("model-live-drawn");
      status.textContent = `live from this web UI's own figures, every ${body.sample_seconds} s · updated ${new Date(body.now * 1000).toLocaleTimeString()}`;
    } catch (error) {
      status.textContent = "live figures unavailable: " + error.message + " (retrying)";
    } finally {
      window.setTimeout(refreshLive, sampleSeconds * 1000);
    }
  }

  loadVersions().catch((error) => {
    const note = document.getElementById("page-note");
    note.hidden = false;
    note.textContent = "The versions could not be loaded: " + error.message + ". Reload the page to try again.";
  });
  refreshLive();
})();
