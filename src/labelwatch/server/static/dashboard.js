/* labelwatch dashboard and report: draws a page from the JSON embedded in it
 * (<script type="application/json" id="page-data">) with the vendored uPlot.
 *
 * Label, model and feature names are user data: every text goes in through
 * textContent / createTextNode, never innerHTML. Precision, recall and F1 at a
 * threshold are computed from the sketch's bins in the same order of operations as
 * ScoreSketch (exact at the bin edges), so the numbers equal the API's. */
(function () {
  "use strict";

  // ------------------------------------------------------------------ DOM helpers
  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.slice(0, 2) === "on") node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    });
    return node;
  }

  function isNum(v) {
    return typeof v === "number" && isFinite(v);
  }

  function fmt(v, digits) {
    return isNum(v) ? v.toFixed(digits === undefined ? 3 : digits) : "–";
  }

  function fmtCount(v) {
    return isNum(v) ? Math.round(v).toLocaleString("en-US") : "–";
  }

  function fmtTime(iso) {
    return iso ? String(iso).slice(0, 16).replace("T", " ") + " UTC" : "–";
  }

  function section(root, title, id) {
    var s = h("section", { class: "card", id: id || null }, [h("h2", { text: title })]);
    root.appendChild(s);
    return s;
  }

  function note(parent, message) {
    parent.appendChild(h("p", { class: "note", text: message }));
  }

  // ------------------------------------------------------------------ charts
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

  function chart(parent, opts, data) {
    var box = h("div", { class: "chart" });
    parent.appendChild(box);
    var avail = opts.half ? (parent.clientWidth || 640) / 2 - 12 : box.clientWidth || parent.clientWidth || 640;
    var width = Math.max(300, Math.min(avail, 1100));
    var dots = data[0].length <= 60;
    var series = [{}].concat(opts.series.map(function (s, i) {
      return Object.assign({
        stroke: COLORS[i % COLORS.length], width: 2, spanGaps: false, points: { show: dots },
      }, s);
    }));
    var config = {
      width: width,
      height: opts.height || 240,
      title: opts.title,
      scales: { x: { time: !!opts.time }, y: opts.y || { auto: true } },
      series: series,
      axes: [
        { label: opts.xLabel || null, incrs: opts.integerX ? [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] : undefined },
        { label: opts.yLabel || null, size: 60 },
      ],
      legend: { show: true },
      cursor: { drag: { x: true, y: false } },
    };
    if (opts.time) {
      config.tzDate = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); };
    }
    if (opts.xRange) config.scales.x.range = opts.xRange;
    return new uPlot(config, data, box);
  }

  var UNIT = { range: [0, 1], auto: false };

  function bars() {
    return uPlot.paths.bars({ size: [0.8, 40] });
  }

  function steps(i) {
    return {
      paths: uPlot.paths.stepped({ align: 1 }), points: { show: false },
      fill: ["rgba(37,99,235,0.18)", "rgba(220,38,38,0.18)", "rgba(22,163,74,0.18)"][i],
    };
  }

  // ---------------------------------------------------------- sketch math
  // above[o][j]: weight of outcome o with score > edges[j], summed from the top bin
  // down like numpy's cumsum in ScoreSketch._above.
  function above(counts) {
    var m = counts[0].length;
    var out = [];
    for (var o = 0; o < 3; o++) {
      var row = new Float64Array(m);
      var acc = 0;
      for (var b = m - 1; b >= 0; b--) {
        row[b] = acc;
        acc += counts[o][b];
      }
      out.push(row);
    }
    return out;
  }

  function ratio(num, den) {
    return den === 0 ? NaN : num / den;
  }

  // precision / recall / F1 at every edge of one label's counts [3][m] and totals [3]
  function atEdges(counts, totals) {
    var ab = above(counts);
    var m = counts[0].length;
    var out = { precision: [], recall: [], f1: [] };
    for (var j = 0; j < m; j++) {
      var tp = ab[1][j];
      var fp = ab[0][j];
      var fn = totals[1] - tp;
      out.precision.push(ratio(tp, tp + fp));
      out.recall.push(ratio(tp, tp + fn));
      out.f1.push(ratio(2 * tp, 2 * tp + fn + fp));
    }
    return out;
  }

  // ROC / PR points from the top bin down (ScoreSketch.roc_curve / pr_curve)
  function curves(counts) {
    var m = counts[0].length;
    var fps = [0], tps = [0];
    for (var b = m - 1; b >= 0; b--) {
      fps.push(fps[fps.length - 1] + counts[0][b]);
      tps.push(tps[tps.length - 1] + counts[1][b]);
    }
    var nNeg = fps[fps.length - 1], nPos = tps[tps.length - 1];
    var roc = [[], []], pr = [[], []];
    for (var k = 0; k < fps.length; k++) {
      if (nNeg > 0 && nPos > 0) {
        roc[0].push(fps[k] / nNeg);
        roc[1].push(tps[k] / nPos);
      }
      if (nPos > 0 && tps[k] + fps[k] > 0) {
        pr[0].push(tps[k] / nPos);
        pr[1].push(tps[k] / (tps[k] + fps[k]));
      }
    }
    return { roc: roc, pr: pr };
  }

  // share of a histogram in n equal bins of [0, 1], each sketch bin by its upper edge
  function coarse(edges, hist, n) {
    var out = new Array(n).fill(0);
    var total = 0;
    for (var b = 0; b < edges.length; b++) {
      var k = edges[b] <= 0 ? 0 : Math.min(n - 1, Math.ceil(edges[b] * n - 1e-9) - 1);
      out[k] += hist[b];
      total += hist[b];
    }
    return out.map(function (v) { return total > 0 ? v / total : null; });
  }

  function sumOutcomes(counts) {
    return counts[0].map(function (_, b) { return counts[0][b] + counts[1][b] + counts[2][b]; });
  }

  // ------------------------------------------------------------ label detail
  function renderLabel(root, d) {
    var cur = d.current;
    var counts = cur.counts[0];
    var totals = cur.totals[0];
    var edges = cur.edges;

    var head = section(root, "Threshold", "threshold-card");
    var sweep = atEdges(counts, totals);
    var start = edges.indexOf(d.threshold);
    if (start < 0) start = 0;
    var slider = h("input", {
      type: "range", id: "threshold", min: 0, max: edges.length - 1, step: 1, value: start,
      "aria-label": "decision threshold",
    });
    var shown = {};
    var stats = h("div", { class: "kpis" }, ["threshold", "precision", "recall", "f1"].map(function (k) {
      shown[k] = h("span", { class: "kpi-value", id: "th-" + k });
      return h("div", { class: "kpi" }, [h("span", { class: "kpi-label", text: k === "f1" ? "F1" : k }), shown[k]]);
    }));
    function update() {
      var j = Number(slider.value);
      var values = {
        threshold: edges[j], precision: sweep.precision[j], recall: sweep.recall[j], f1: sweep.f1[j],
      };
      Object.keys(values).forEach(function (k) {
        var v = values[k];
        shown[k].textContent = fmt(v, 4);
        shown[k].setAttribute("data-value", isNum(v) ? String(v) : "");
      });
    }
    slider.addEventListener("input", update);
    head.appendChild(h("p", { class: "muted" }, [
      "The label's decision threshold is " + fmt(d.threshold, 4) +
      "; move the slider to see precision, recall and F1 at other thresholds (the sketch's bin edges, where they are exact).",
    ]));
    head.appendChild(slider);
    head.appendChild(stats);
    update();
    chart(head, {
      title: "Precision, recall and F1 against the threshold", xLabel: "threshold", y: UNIT,
      series: [{ label: "precision" }, { label: "recall" }, { label: "F1" }],
    }, [edges, nulls(sweep.precision), nulls(sweep.recall), nulls(sweep.f1)]);

    var dist = section(root, "Score distributions");
    var n = 50;
    var xs = [];
    for (var i = 0; i < n; i++) xs.push(i / n);
    var distSeries = [Object.assign({ label: "current" }, steps(0))];
    var distData = [xs, coarse(edges, sumOutcomes(counts), n)];
    if (d.baseline) {
      distSeries.push(Object.assign({ label: (d.baseline_kind || "baseline") + " baseline" }, steps(1)));
      distData.push(coarse(d.baseline.edges, sumOutcomes(d.baseline.counts[0]), n));
    } else {
      note(dist, "No baseline for this label: the current distribution only.");
    }
    chart(dist, { title: "Share of predictions per score bin", xLabel: "score", series: distSeries, xRange: [0, 1] }, distData);
    chart(dist, {
      title: "Current scores by outcome", xLabel: "score", xRange: [0, 1],
      series: [Object.assign({ label: "positive" }, steps(0)), Object.assign({ label: "negative" }, steps(1)), Object.assign({ label: "unlabeled" }, steps(2))],
    }, [xs, coarse(edges, counts[1], n), coarse(edges, counts[0], n), coarse(edges, counts[2], n)]);

    var cv = curves(counts);
    var rc = section(root, "ROC and precision-recall curves");
    rc.appendChild(h("p", { class: "muted", text: "ROC AUC " + fmt(d.roc_auc) + " · average precision " + fmt(d.average_precision) }));
    var row = h("div", { class: "row" });
    rc.appendChild(row);
    if (cv.roc[0].length) {
      chart(row, { title: "ROC", xLabel: "false positive rate", yLabel: "true positive rate", y: UNIT, xRange: [0, 1], height: 300, half: true, series: [{ label: "TPR" }] }, cv.roc);
    } else note(row, "ROC undefined: no positives or no negatives with actuals yet.");
    if (cv.pr[0].length) {
      chart(row, { title: "Precision-recall", xLabel: "recall", yLabel: "precision", y: UNIT, xRange: [0, 1], height: 300, half: true, series: [{ label: "precision" }] }, cv.pr);
    } else note(row, "Precision-recall undefined: no positive actuals yet.");

    if (d.series) {
      var ts = section(root, "Over time");
      if (d.series.t.length) {
        chart(ts, {
          title: "Per " + (d.granularity || "period"), time: true, y: UNIT,
          series: [{ label: "precision" }, { label: "recall" }, { label: "F1" }],
        }, [d.series.t, d.series.precision, d.series.recall, d.series.f1]);
      } else note(ts, "No data in this time range.");
    }
  }

  function nulls(arr) {
    return arr.map(function (v) { return isNum(v) ? v : null; });
  }

  // -------------------------------------------------------------- label table
  var COLUMNS = [
    ["label", "Label", "text"],
    ["count", "Predictions", "count"],
    ["prevalence", "Prevalence", 3],
    ["threshold", "Threshold", 3],
    ["precision", "Precision", 3],
    ["recall", "Recall", 3],
    ["f1", "F1", 3],
    ["roc_auc", "AUC", 3],
    ["drift", "Drift (PSI)", 3],
    ["alerts", "Alerts", "alerts"],
  ];

  function renderLabelTable(root, data, labelHref, onPick) {
    var rows = data.rows;
    var card = section(root, "Labels (" + rows.length + ")", "label-table-card");
    if (data.drift_note) note(card, "Drift: " + data.drift_note);
    var filter = h("input", { type: "search", id: "label-filter", placeholder: "Filter labels…", "aria-label": "filter labels" });
    var onlyAlerts = h("input", { type: "checkbox", id: "only-alerts" });
    var counter = h("span", { class: "muted", id: "label-count" });
    card.appendChild(h("div", { class: "toolbar" }, [filter, h("label", {}, [onlyAlerts, " alerting only"]), counter]));
    var table = h("table", { class: "data", id: "label-table" });
    var tbody = h("tbody");
    var sortKey = "label", sortDir = 1;
    var headRow = h("tr", {}, COLUMNS.map(function (c) {
      return h("th", {
        class: "sortable", "data-key": c[0], scope: "col",
        onclick: function () {
          sortDir = sortKey === c[0] ? -sortDir : (c[2] === "text" ? 1 : -1);
          sortKey = c[0];
          draw();
        },
      }, [c[1]]);
    }));
    table.appendChild(h("thead", {}, [headRow]));
    table.appendChild(tbody);
    card.appendChild(h("div", { class: "scroll" }, [table]));

    // rows are built when first shown: the first PAGE of the sorted, filtered labels,
    // PAGE more per click (a thousand rows at once cost more layout than all the rest)
    function makeRow(r) {
      var tr = h("tr", { "data-label": r.label });
      COLUMNS.forEach(function (c) {
        var v = r[c[0]];
        var td;
        if (c[2] === "text") {
          var a = h("a", { href: labelHref ? labelHref(r.label) : "#", class: "label-link", text: r.label });
          if (onPick) a.addEventListener("click", function (ev) { ev.preventDefault(); onPick(r.label); });
          td = h("td", {}, [a]);
        } else if (c[2] === "alerts") {
          td = h("td", {}, (v || []).map(function (al) {
            return h("span", { class: "badge sev-" + al.severity, title: "incident " + al.incident, text: al.monitor });
          }));
        } else {
          td = h("td", { class: "num" + (c[0] === "drift" && r.drift_flagged ? " flagged" : ""), text: c[2] === "count" ? fmtCount(v) : fmt(v, c[2]) });
        }
        tr.appendChild(td);
      });
      return tr;
    }
    var items = rows.map(function (r) { return { row: r, tr: null, key: r.label.toLowerCase() }; });
    var PAGE = 200, limit = PAGE;
    var more = h("button", { type: "button", id: "label-more", class: "more", onclick: function () { limit += PAGE; draw(); } });
    card.appendChild(more);

    function cmp(a, b) {
      var x = a.row[sortKey], y = b.row[sortKey];
      if (sortKey === "alerts") { x = (x || []).length; y = (y || []).length; }
      if (sortKey === "label") return sortDir * (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
      var xn = isNum(x), yn = isNum(y);
      if (!xn || !yn) return xn === yn ? 0 : xn ? -1 : 1; // undefined values last
      return sortDir * (x - y);
    }

    function draw() {
      var text = filter.value.trim().toLowerCase();
      var frag = document.createDocumentFragment();
      var matching = items.slice().sort(cmp).filter(function (it) {
        return (!text || it.key.indexOf(text) >= 0) && (!onlyAlerts.checked || (it.row.alerts || []).length);
      });
      matching.slice(0, limit).forEach(function (it) {
        if (!it.tr) it.tr = makeRow(it.row);
        frag.appendChild(it.tr);
      });
      tbody.replaceChildren(frag);
      var shown = Math.min(limit, matching.length);
      counter.textContent = shown < matching.length
        ? "first " + shown + " of " + matching.length + " matching labels (" + items.length + " in all)"
        : matching.length + " of " + items.length + " labels";
      more.hidden = shown >= matching.length;
      more.textContent = "Show " + Math.min(PAGE, matching.length - shown) + " more";
      Array.prototype.forEach.call(headRow.children, function (th) {
        th.setAttribute("aria-sort", th.getAttribute("data-key") === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
      });
    }
    filter.addEventListener("input", draw);
    onlyAlerts.addEventListener("change", draw);
    draw();

    var withValues = rows.filter(function (r) { return isNum(r.f1); });
    if (withValues.length) {
      var sorted = withValues.slice().sort(function (a, b) { return a.f1 - b.f1; });
      var xs = sorted.map(function (_, i) { return i + 1; });
      chart(card, {
        title: "F1 at each label's threshold, labels ranked (hover for the value)", xLabel: "rank", y: UNIT, height: 180, integerX: true,
        series: [{ label: "F1", paths: bars() }],
      }, [xs, sorted.map(function (r) { return r.f1; })]);
    }
  }

  // --------------------------------------------------------------- overview
  function renderOverview(root, data, links) {
    var t = data.totals || {};
    var kpi = section(root, "This time range");
    kpi.appendChild(h("div", { class: "kpis" }, [
      ["predictions", fmtCount(t.predictions)], ["with actuals", fmtCount(t.labeled)],
      ["labels", fmtCount(t.labels)], ["example-based F1", fmt(t.samples_f1)], ["subset accuracy", fmt(t.subset_accuracy)],
      ["open incidents", String((data.incidents || []).length)],
    ].map(function (p) {
      return h("div", { class: "kpi" }, [h("span", { class: "kpi-label", text: p[0] }), h("span", { class: "kpi-value", text: p[1] })]);
    })));
    var s = data.series;
    var vol = section(root, "Volume");
    if (!s.t.length) {
      note(vol, "No predictions in this time range.");
    } else {
      chart(vol, { title: "Predictions per " + data.granularity, time: true, y: { range: function (u, lo, hi) { return [0, Math.max(1, hi * 1.1)]; } }, series: [{ label: "predictions", paths: bars(), fill: "rgba(37,99,235,0.3)" }] }, [s.t, s.volume]);
    }
    var perf = section(root, "F1 over time");
    if (s.t.length) {
      var plot = chart(perf, {
        title: "Realized (actuals) and estimated (no actuals needed) F1", time: true, y: UNIT,
        series: [{ label: "micro F1" }, { label: "macro F1" }],
      }, [s.t, s.micro_f1, s.macro_f1]);
      if (links && links.estimated) loadEstimate(perf, links.estimated, plot);
      else if (data.estimated) drawEstimate(perf, data.estimated);
    } else note(perf, "No data in this time range.");
    var inc = section(root, "Open incidents");
    incidentList(inc, data.incidents || [], links);
  }

  function loadEstimate(parent, url, plot) {
    var status = h("p", { class: "note", id: "estimate-status", text: "Estimating F1…" });
    parent.appendChild(status);
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (est) {
        status.remove();
        drawEstimate(parent, est);
      });
  }

  function drawEstimate(parent, est) {
    if (est.note || !est.series) { note(parent, "Estimated F1: " + (est.note || "none")); return; }
    var e = est.series;
    if (!e.t.length) { note(parent, "Estimated F1: no data."); return; }
    chart(parent, {
      title: "Estimated micro F1 with its 95% band", time: true, y: UNIT,
      series: [{ label: "estimated F1", stroke: "#9333ea" }, { label: "lower", stroke: "#c4b5fd", width: 1 }, { label: "upper", stroke: "#c4b5fd", width: 1 }],
    }, [e.t, e.value, e.lower, e.upper]);
  }

  function incidentList(parent, incidents, links) {
    if (!incidents.length) { note(parent, "None."); return; }
    var table = h("table", { class: "data" }, [h("thead", {}, [h("tr", {}, ["#", "monitor", "severity", "status", "opened", "labels breaching"].map(function (x) { return h("th", { text: x }); }))])]);
    var tb = h("tbody");
    incidents.forEach(function (i) {
      var labels = (i.breaches || []).map(function (b) { return b.label; });
      var n = i.n_breaches != null ? i.n_breaches : labels.length;
      var shownLabels = labels.slice(0, 5).join(", ") + (n > 5 ? " … (" + n + ")" : "");
      tb.appendChild(h("tr", {}, [
        h("td", {}, [links && links.incidents ? h("a", { href: links.incidents + "#incident-" + i.id, text: String(i.id) }) : String(i.id)]),
        h("td", { text: i.monitor }), h("td", {}, [h("span", { class: "badge sev-" + i.severity, text: i.severity })]),
        h("td", { text: i.status }), h("td", { text: fmtTime(i.opened_at) }), h("td", { text: shownLabels }),
      ]));
    });
    table.appendChild(tb);
    parent.appendChild(table);
  }

  // --------------------------------------------------------- co-occurrence
  function heatmap(parent, title, labels, matrix, missing) {
    var box = h("div", { class: "heatmap" }, [h("h3", { text: title })]);
    parent.appendChild(box);
    if (!matrix) { box.appendChild(h("p", { class: "note missing", text: missing || "not collected" })); return; }
    var n = labels.length;
    var margin = 130;
    var cell = Math.max(6, Math.min(22, Math.floor(420 / Math.max(n, 1))));
    var size = margin + cell * n + 4;
    var canvas = h("canvas", { width: size, height: size, class: "heatmap-canvas", role: "img", "aria-label": title });
    box.appendChild(canvas);
    var tip = h("div", { class: "tip" });
    box.appendChild(tip);
    var ctx = canvas.getContext("2d");
    var max = 0;
    matrix.forEach(function (r) { r.forEach(function (v) { if (isNum(v) && v > max) max = v; }); });
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, size, size);
    for (var i = 0; i < n; i++) {
      for (var j = 0; j < n; j++) {
        var v = matrix[i][j];
        var a = isNum(v) && max > 0 ? v / max : 0;
        ctx.fillStyle = isNum(v) ? "rgba(37,99,235," + (0.05 + 0.95 * a).toFixed(3) + ")" : "#eee";
        ctx.fillRect(margin + j * cell, margin + i * cell, cell - 1, cell - 1);
      }
    }
    ctx.fillStyle = "#333";
    ctx.font = Math.min(12, cell) + "px sans-serif";
    ctx.textBaseline = "middle";
    labels.forEach(function (name, k) {
      var short = name.length > 18 ? name.slice(0, 17) + "…" : name;
      ctx.textAlign = "right";
      ctx.fillText(short, margin - 4, margin + k * cell + cell / 2); // canvas text: never HTML
      ctx.save();
      ctx.translate(margin + k * cell + cell / 2, margin - 4);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      ctx.fillText(short, 0, 0);
      ctx.restore();
    });
    canvas.addEventListener("mousemove", function (ev) {
      var r = canvas.getBoundingClientRect();
      var j = Math.floor((ev.clientX - r.left - margin) / cell), i = Math.floor((ev.clientY - r.top - margin) / cell);
      if (i >= 0 && j >= 0 && i < n && j < n) {
        tip.textContent = labels[i] + " & " + labels[j] + ": " + fmt(matrix[i][j], 4);
      } else tip.textContent = "";
    });
  }

  function renderCooccurrence(root, d) {
    var s = section(root, "Label co-occurrence", "cooccurrence-card");
    s.appendChild(h("p", { class: "muted", text: "Share of labelled predictions where both labels are actual (the diagonal: each label's prevalence); the " + d.labels.length + " most prevalent labels." }));
    var row = h("div", { class: "row" });
    s.appendChild(row);
    heatmap(row, "Baseline" + (d.baseline_kind ? " (" + d.baseline_kind + ")" : ""), d.labels, d.baseline, d.baseline_note);
    heatmap(row, "This time range", d.labels, d.current, d.current_note);
  }

  // ------------------------------------------------------------------ drift
  function renderDrift(root, d, controls) {
    var s = section(root, "Drift against the " + d.baseline + " baseline", "drift-card");
    if (controls) {
      var params = new URLSearchParams(window.location.search);
      var pick = function (name, values, current) {
        var sel = h("select", { name: name, id: "drift-" + name }, values.map(function (v) {
          return h("option", { value: v, selected: v === current, text: v });
        }));
        sel.addEventListener("change", function () {
          params.set(name, sel.value);
          window.location.search = params.toString();
        });
        return h("label", {}, [name + " ", sel]);
      };
      s.appendChild(h("div", { class: "toolbar" }, [
        pick("metric", d.choices, d.metric), pick("baseline", ["training", "test", "previous"], d.baseline),
      ]));
    }
    if (d.note) note(s, d.note);
    var entries = d.entries || [];
    if (!entries.length) { note(s, "No drift values for this time range."); return; }
    var top = entries.filter(function (e) { return isNum(e.value); }).slice(0, 40);
    if (top.length) {
      chart(s, {
        title: d.metric + ": the " + top.length + " largest (rank on x; hover for the value)", xLabel: "rank", height: 200, integerX: true,
        series: [{ label: d.metric, paths: bars(), fill: "rgba(220,38,38,0.35)", stroke: "#dc2626" }],
      }, [top.map(function (_, i) { return i + 1; }), top.map(function (e) { return e.value; })]);
    }
    var cols = ["label", "value", "n", "status", "baseline", "current"];
    var table = h("table", { class: "data", id: "drift-table" }, [h("thead", {}, [h("tr", {}, cols.map(function (c) { return h("th", { text: c }); }))])]);
    var tb = h("tbody");
    entries.forEach(function (e, i) {
      tb.appendChild(h("tr", { class: e.status === "breach" ? "flagged" : null }, [
        h("td", { text: (i < top.length ? "#" + (i + 1) + " " : "") + e.label }), h("td", { class: "num", text: fmt(e.value, 4) }),
        h("td", { class: "num", text: fmtCount(e.n) }), h("td", { text: e.status }),
        h("td", { class: "num", text: fmt(e.baseline === undefined ? e.reference : e.baseline, 4) }), h("td", { class: "num", text: fmt(e.current, 4) }),
      ]));
    });
    table.appendChild(tb);
    s.appendChild(h("div", { class: "scroll" }, [table]));
  }

  // --------------------------------------------------------------- monitors
  function renderMonitorCharts(data) {
    (data.monitors || []).forEach(function (m, i) {
      var box = document.getElementById("monitor-history-" + i);
      if (!box) return;
      if (!m.history.t.length) { note(box, "Not run yet."); return; }
      chart(box, {
        title: "Breaching labels per run", time: true, height: 140,
        series: [{ label: "breaching", paths: bars(), fill: "rgba(220,38,38,0.35)", stroke: "#dc2626" }],
      }, [m.history.t, m.history.breaching]);
    });
  }

  // ------------------------------------------------------------------ report
  function renderReport(root, data) {
    if (data.overview) renderOverview(root, data.overview, null);
    var sk = data.sketch;
    var index = {};
    sk.labels.forEach(function (x, i) { index[x] = i; });
    var base = data.baseline || null;
    var baseIndex = {};
    if (base) base.labels.forEach(function (x, i) { baseIndex[x] = i; });
    var rowsBy = {};
    data.labels.rows.forEach(function (r) { rowsBy[r.label] = r; });
    var detail = h("div", { id: "label-detail" });
    function pick(label) {
      var i = index[label];
      var r = rowsBy[label] || {};
      var th = isNum(r.threshold) ? r.threshold : sk.thresholds[0];
      var d = {
        label: label, threshold: th,
        current: { edges: sk.edges, counts: [sk.counts[i]], totals: [sk.totals[i]] },
        baseline: base && label in baseIndex ? { edges: base.edges, counts: [base.counts[baseIndex[label]]] } : null,
        baseline_kind: data.baseline_kind || null, roc_auc: r.roc_auc, average_precision: r.average_precision, series: null,
      };
      detail.replaceChildren();
      detail.appendChild(h("h2", { class: "label-title" }, ["Label: ", h("span", { id: "label-name", text: label })]));
      renderLabel(detail, d);
    }
    renderLabelTable(root, data.labels, null, function (label) { pick(label); detail.scrollIntoView(); });
    root.appendChild(detail);
    if (sk.labels.length) pick(data.first_label || sk.labels[0]);
    if (data.cooccurrence) renderCooccurrence(root, data.cooccurrence);
    if (data.drift) renderDrift(root, data.drift, false);
  }

  // ------------------------------------------------------------------ pages
  function pickers() {
    var form = document.querySelector("form.pickers");
    if (!form) return;
    var range = form.querySelector("select[name=range]");
    form.querySelectorAll("input[type=datetime-local]").forEach(function (input) {
      input.addEventListener("change", function () { if (range) range.value = "custom"; });
    });
  }

  function main() {
    pickers();
    var node = document.getElementById("page-data");
    if (!node) { document.body.setAttribute("data-ready", "1"); return; }
    var data = JSON.parse(node.textContent);
    var root = document.getElementById("app");
    var links = data.links || {};
    switch (data.page) {
      case "overview": renderOverview(root, data.overview, links); break;
      case "labels":
        renderLabelTable(root, data.labels, function (label) {
          return links.label + "&label=" + encodeURIComponent(label);
        }, null);
        break;
      case "label": renderLabel(root, data.label); break;
      case "cooccurrence": renderCooccurrence(root, data.cooccurrence); break;
      case "drift": renderDrift(root, data.drift, true); break;
      case "monitors": renderMonitorCharts(data); break;
      case "report": renderReport(root, data); break;
      default: break;
    }
    document.body.setAttribute("data-ready", "1");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", main);
  else main();
})();
