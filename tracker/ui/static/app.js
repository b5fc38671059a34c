// tracker dashboard: charts from the JSON API and live updates. No build step, no inline script.
(function () {
  "use strict";
  var root = document.body.dataset.root || "";
  var RED = "#d62728", GREEN = "#2ca02c", GREY = "#8c8c8c", BLUE = "#1f77b4", ORANGE = "#ff7f0e";
  // The tool bar shows on hover only, at the top right; titles sit at the top left.
  var config = { displaylogo: false, responsive: true, displayModeBar: "hover" };

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } }).then(function (r) {
      if (!r.ok) {
        return r.json().then(function (body) { throw new Error(body.message || r.statusText); });
      }
      return r.json();
    });
  }

  // Plotly reads a few HTML-like tags in its text (<a href>, <b>, <br>...): every user string that
  // reaches it (titles, tick labels, hover text, legend names, categories) is given as entities.
  function plain(text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  // A value on an axis: numbers as they are, anything else as escaped text (a category).
  function shown(value) { return typeof value === "number" || value === null ? value : plain(value); }

  // Trial numbers are whole: integer ticks, one per trial when there are few.
  function trialAxis(last) {
    var axis = { title: { text: "trial number" }, tickformat: "d" };
    if (last !== undefined && last <= 12) { axis.dtick = 1; axis.tick0 = 0; }
    return axis;
  }

  function say(el, text) {
    var p = document.createElement("p");
    p.className = "chart-note";
    p.textContent = text;
    el.replaceChildren(p);
  }

  function layout(title, extra) {
    var base = {
      title: { text: title, font: { size: 14 }, x: 0.01, xanchor: "left" },
      margin: { l: 60, r: 20, t: 40, b: 45 },
      height: 340,
      legend: { orientation: "h", y: -0.2 },
      hovermode: "closest",
    };
    return Object.assign(base, extra || {});
  }

  function openTrial(el) {
    el.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      if (point && point.customdata) { window.location.href = root + "/trials/" + point.customdata; }
    });
  }

  var charts = {
    history: function (el, h) {
      if (!h.points.length && !h.marks.length) { return say(el, "No trial yet."); }
      var passed = h.points.filter(function (p) { return p.ttpt !== "failed"; });
      var failed = h.points.filter(function (p) { return p.ttpt === "failed"; });
      var values = h.points.map(function (p) { return p.value; }).filter(function (v) { return v !== null; });
      var low = values.length ? Math.min.apply(null, values) : 0;
      var high = values.length ? Math.max.apply(null, values) : 1;
      var floor = low - 0.05 * ((high - low) || 1);
      var last = Math.max.apply(null, h.points.concat(h.marks).map(function (p) { return p.trial_number; }));
      var best = h.best.map(function (p) { return [p.trial_number, p.value]; });
      if (best.length) { best.push([last, best[best.length - 1][1]]); }
      function markers(points, name, color, symbol, y) {
        return {
          type: "scatter", mode: "markers", name: name,
          x: points.map(function (p) { return p.trial_number; }),
          y: points.map(function (p) { return y === undefined ? p.value : y; }),
          customdata: points.map(function (p) { return p.trial_id; }),
          marker: { color: color, size: symbol ? 8 : 6, symbol: symbol || "circle", opacity: 0.8 },
          hovertemplate: "trial %{x}<br>%{y}<extra>" + name + "</extra>",
        };
      }
      var traces = [
        markers(passed, "trial", GREY),
        markers(failed, "failed TTPT", RED),
        {
          type: "scatter", mode: "lines", name: "running best", line: { shape: "hv", color: BLUE, width: 2 },
          x: best.map(function (p) { return p[0]; }), y: best.map(function (p) { return p[1]; }),
        },
        markers(h.marks.filter(function (p) { return p.state === "pruned"; }), "pruned", ORANGE, "line-ns-open", floor),
        markers(h.marks.filter(function (p) { return p.state === "failed"; }), "failed", "#000", "x-thin-open", floor),
      ];
      // The expected maximum Sharpe of the False Strategy Theorem, when the objective is a Sharpe.
      var luck = el.dataset.maxSharpe === undefined || el.dataset.maxSharpe === "" ? null : Number(el.dataset.maxSharpe);
      if (luck !== null && isFinite(luck)) {
        traces.push({
          type: "scatter", mode: "lines", name: "expected max Sharpe (luck)", x: [0, last], y: [luck, luck],
          line: { color: RED, dash: "dash", width: 1.5 }, hovertemplate: "expected max Sharpe %{y}<extra></extra>",
        });
      }
      var title = "History: " + h.n_trials.toLocaleString() + " trials" +
        (h.sampled ? " (downsampled to " + (h.points.length + h.marks.length) + " points; running best and extremes kept)" : "");
      var objective = plain(h.objective) + (h.direction === "maximize" ? " (higher is better)" : " (lower is better)");
      Plotly.react(el, traces, layout(title, { xaxis: trialAxis(last), yaxis: { title: { text: objective } } }), config);
      openTrial(el);
    },

    // CSCV's logits: λ <= 0 when the in-sample best ranks below the median out of sample.
    logits: function (el, o) {
      if (!o.logits.length) { return say(el, "No CSCV logits: they need 2 or more trials with returns and enough periods."); }
      Plotly.react(el, [{
        type: "histogram", x: o.logits, name: "λ", marker: { color: BLUE },
        hovertemplate: "λ %{x}<br>%{y} splits<extra></extra>",
      }], layout("CSCV logits λ (PBO = share of λ ≤ 0: " + (o.pbo === null ? "-" : o.pbo.toFixed(3)) + ")", {
        xaxis: { title: { text: "λ = ln(ω / (1 − ω))" } }, yaxis: { title: { text: "splits" } },
        shapes: [{ type: "line", x0: 0, x1: 0, yref: "paper", y0: 0, y1: 1, line: { color: RED, dash: "dot" } }],
      }), config);
    },

    // The failed fraction of each check's boundaries, so an exhaustive check does not dwarf the
    // sampled ones; the raw counts are in the hover text.
    ttpt: function (el, h) {
      if (!h.checks.length) { return say(el, "No TTPT check yet."); }
      function checks(passed, counted) {
        var chosen = h.checks.filter(function (c) { return c.passed === passed && (c.boundaries !== null) === counted; });
        return {
          type: "scatter", mode: "markers", name: (passed ? "passed" : "failed") + (counted ? "" : " (boundaries not recorded)"),
          x: chosen.map(function (c) { return c.trial_number; }),
          y: chosen.map(function (c) { return counted ? c.num_violations / c.boundaries : (passed ? 0 : 1); }),
          customdata: chosen.map(function (c) { return c.trial_id; }),
          text: chosen.map(function (c) {
            return c.num_violations + " of " + (counted ? c.boundaries : "?") + " boundaries failed";
          }),
          hovertemplate: "trial %{x}<br>%{text}<extra></extra>",
          marker: { color: passed ? GREEN : RED, size: 8, symbol: (passed ? "circle" : "x") + (counted ? "" : "-open") },
        };
      }
      var last = Math.max.apply(null, h.checks.map(function (c) { return c.trial_number; }));
      var traces = [checks(true, true), checks(false, true), checks(true, false), checks(false, false)]
        .filter(function (t) { return t.x.length; });
      Plotly.react(el, traces, layout("TTPT timeline: failed fraction of boundaries per check",
        { xaxis: trialAxis(last), yaxis: { title: { text: "failed boundaries" }, tickformat: ".0%", range: [-0.05, 1.05] } }), config);
      openTrial(el);
    },

    importance: function (el, data) {
      var keys = Object.keys(data.importances);
      if (!keys.length) { return say(el, "Parameter importance needs 3 or more complete trials with varying params."); }
      keys.reverse();
      Plotly.react(el, [{
        type: "bar", orientation: "h", marker: { color: BLUE },
        x: keys.map(function (k) { return data.importances[k]; }), y: keys.map(plain),
      }], layout("Parameter importance (PED-ANOVA) on " + plain(data.sample), { margin: { l: 120, r: 20, t: 40, b: 40 } }), config);
    },

    parallel: function (el, s) {
      if (s.trials.length < 2 || !s.params.length) { return say(el, "Parallel coordinates need 2 or more complete trials with params."); }
      var axes = s.params.slice(0, 12);
      var scales = axes.map(function (key) {
        var values = s.trials.map(function (t) { return t.params[key]; }).filter(function (v) { return v !== undefined; });
        var numeric = values.every(function (v) { return typeof v === "number"; });
        if (numeric) {
          var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
          return { numeric: true, lo: lo, hi: hi, at: function (v) { return hi > lo ? (v - lo) / (hi - lo) : 0.5; } };
        }
        var levels = Array.from(new Set(values.map(String))).sort();
        return { numeric: false, levels: levels, at: function (v) { return levels.length > 1 ? levels.indexOf(String(v)) / (levels.length - 1) : 0.5; } };
      });
      var vals = s.trials.map(function (t) { return t.value; });
      var vlo = Math.min.apply(null, vals), vhi = Math.max.apply(null, vals);
      var colors = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
      var groups = colors.map(function () { return { x: [], y: [] }; });
      s.trials.forEach(function (t) {
        var rank = vhi > vlo ? (t.value - vlo) / (vhi - vlo) : 0.5;
        if (s.direction === "minimize") { rank = 1 - rank; }
        var g = groups[Math.min(colors.length - 1, Math.floor(rank * colors.length))];
        axes.forEach(function (key, i) {
          var v = t.params[key];
          g.x.push(i); g.y.push(v === undefined ? null : scales[i].at(v));
        });
        g.x.push(axes.length); g.y.push(vhi > vlo ? (t.value - vlo) / (vhi - vlo) : 0.5);
        g.x.push(null); g.y.push(null);
      });
      var traces = groups.map(function (g, i) {
        return { type: "scatter", mode: "lines", x: g.x, y: g.y, hoverinfo: "skip", showlegend: false,
          line: { color: colors[i], width: 1 }, opacity: 0.35 };
      });
      var labels = axes.map(function (key, i) {
        var sc = scales[i];
        return plain(key) + "<br>" + (sc.numeric ? sc.lo.toPrecision(3) + "–" + sc.hi.toPrecision(3) : sc.levels.length + " levels");
      });
      labels.push(plain(s.objective) + "<br>" + vlo.toPrecision(3) + "–" + vhi.toPrecision(3));
      Plotly.react(el, traces, layout("Parallel coordinates on " + plain(s.description) + " (colour: value, best bright)", {
        xaxis: { tickvals: labels.map(function (_, i) { return i; }), ticktext: labels, showgrid: true, zeroline: false,
          range: [-0.4, axes.length + 0.4] },
        yaxis: { visible: false, range: [-0.05, 1.05] }, margin: { l: 20, r: 20, t: 40, b: 60 },
      }), config);
    },

    slices: function (el, s) {
      if (!s.trials.length || !s.params.length) { return say(el, "Slice plots need complete trials with params."); }
      el.replaceChildren();
      var head = document.createElement("p");
      head.className = "chart-note";
      head.textContent = "Slices on " + s.description;
      el.appendChild(head);
      s.params.slice(0, 12).forEach(function (key) {
        var div = document.createElement("div");
        div.className = "slice";
        el.appendChild(div);
        var chosen = s.trials.filter(function (t) { return t.params[key] !== undefined; });
        Plotly.newPlot(div, [{
          type: "scatter", mode: "markers", marker: { color: BLUE, size: 4, opacity: 0.5 },
          x: chosen.map(function (t) { return shown(t.params[key]); }), y: chosen.map(function (t) { return t.value; }),
          customdata: chosen.map(function (t) { return t.id; }),
          hovertemplate: "%{x}<br>" + plain(s.objective) + " %{y}<extra></extra>",
        }], layout(plain(key), { height: 240, margin: { l: 50, r: 10, t: 30, b: 30 },
          yaxis: { title: { text: plain(s.objective) } } }), config);
        openTrial(div);
      });
    },

    // One small chart per metric key: keys differ in scale (a Sharpe ratio, a drawdown).
    steps: function (el, t) {
      var keys = Object.keys(t.step_metrics).slice(0, 12);
      el.replaceChildren();
      keys.forEach(function (key) {
        var points = t.step_metrics[key], n = t.step_counts[key];
        var div = document.createElement("div");
        div.className = "slice";
        div.dataset.key = key;
        el.appendChild(div);
        var title = plain(key) + (n > points.length ? " (" + points.length.toLocaleString() + " of " + n.toLocaleString() + " steps, downsampled)" : "");
        Plotly.newPlot(div, [{
          type: "scatter", mode: points.length > 200 ? "lines" : "lines+markers", line: { color: BLUE, width: 1.5 },
          x: points.map(function (p) { return p[0]; }), y: points.map(function (p) { return p[1]; }),
        }], layout(title, { height: 240, margin: { l: 50, r: 10, t: 30, b: 30 }, xaxis: { title: { text: "step" } } }), config);
      });
      if (Object.keys(t.step_metrics).length > keys.length) { say(el.appendChild(document.createElement("div")), "The first 12 keys are shown; the API serves them all."); }
    },

    // The front over all objectives, shown for the chosen pair: others grey, the front in blue
    // (connected for 2 objectives, where it is a staircase). Axes say which way is better.
    pareto: function (el, p) {
      if (!p.n_points) { return say(el, "No complete trial has a number for every objective yet."); }
      var xi = p.objectives.findIndex(function (o) { return o.name === p.x; });
      var yi = p.objectives.findIndex(function (o) { return o.name === p.y; });
      function axis(i) {
        var o = p.objectives[i];
        return { title: { text: plain(o.name) + (o.direction === "maximize" ? " ↑" : " ↓") } };
      }
      var hover = "trial %{text}<br>" + plain(p.x) + " %{x}<br>" + plain(p.y) + " %{y}<extra></extra>";
      function trace(points, name, color, lines) {
        return {
          type: "scatter", mode: lines ? "lines+markers" : "markers", name: name,
          x: points.map(function (t) { return t.values[xi]; }), y: points.map(function (t) { return t.values[yi]; }),
          text: points.map(function (t) { return t.trial_number; }),
          customdata: points.map(function (t) { return t.trial_id; }),
          marker: { color: color, size: lines ? 8 : 5, opacity: lines ? 1 : 0.5 },
          // The staircase bounds the region the front dominates: by x ascending, it turns at the
          // inner corners, first along x when x is minimised, first along y when maximised.
          line: { color: color, shape: p.objectives[xi].direction === "maximize" ? "vh" : "hv", width: 1.5 },
          hovertemplate: hover,
        };
      }
      var two = p.objectives.length === 2;
      var front = p.front.slice().sort(function (a, b) { return a.values[xi] - b.values[xi]; });
      var title = "Pareto front: " + p.front.length.toLocaleString() + " of " + p.n_points.toLocaleString() + " trials" +
        (p.sampled ? " (others downsampled to " + p.others.length.toLocaleString() + ")" : "");
      Plotly.react(el, [trace(p.others, "trial", GREY, false), trace(front, two ? "front" : "front (all objectives)", BLUE, two)],
        layout(title, { xaxis: axis(xi), yaxis: axis(yi) }), config);
      openTrial(el);
    },

    // The hypervolume of the front of the trials up to each trial number, as a step line.
    hypervolume: function (el, p) {
      if (!p.history.length) { return say(el, "No hypervolume yet: no complete trial has every objective."); }
      var xs = p.history.map(function (h) { return h[0]; }), ys = p.history.map(function (h) { return h[1]; });
      Plotly.react(el, [{
        type: "scatter", mode: "lines+markers", name: "hypervolume", x: xs, y: ys,
        line: { shape: "hv", color: BLUE, width: 2 }, marker: { size: 5, color: BLUE },
        hovertemplate: "trial %{x}<br>hypervolume %{y}<extra></extra>",
      }], layout("Hypervolume history (from the worst value of each objective)" + (p.history_sampled ? ", downsampled" : ""),
        { xaxis: trialAxis(xs[xs.length - 1]), yaxis: { title: { text: "hypervolume" } } }), config);
    },

    // Running best, overlaid: as recorded, or each curve divided by its own final best, so an
    // honest study is not flattened under a leaky one's scale.
    compare: function (el, data) {
      var normalised = el.dataset.scale === "normalised";
      var traces = data.experiments.map(function (e) {
        var xs = e.curve.map(function (p) { return p[0]; }), ys = e.curve.map(function (p) { return p[1]; });
        if (xs.length && e.last_trial_number !== null) { xs.push(e.last_trial_number); ys.push(ys[ys.length - 1]); }
        var final = ys.length ? ys[ys.length - 1] : null;
        if (normalised) { ys = ys.map(function (y) { return final ? y / final : null; }); }
        return { type: "scatter", mode: "lines", name: plain(e.name) + " (" + e.verdict.status + ")", x: xs, y: ys, line: { shape: "hv", width: 2 } };
      });
      var objectives = Array.from(new Set(data.experiments.map(function (e) { return e.objective; }))).map(plain).join(", ");
      var y = normalised ? "best " + objectives + " ÷ its final best" : "best " + objectives;
      Plotly.react(el, traces, layout("Running best, overlaid" + (normalised ? " (normalised)" : ""),
        { xaxis: trialAxis(), yaxis: { title: { text: y } } }), config);
    },
  };

  var cache = {};
  function draw(el, fresh) {
    var src = el.dataset.src;
    if (fresh || !cache[src]) { cache[src] = getJSON(src); }
    return cache[src].then(function (data) {
      charts[el.dataset.chart](el, data);
      el.dataset.drawn = String(Number(el.dataset.drawn || 0) + 1);
    }).catch(function (err) { say(el, "Could not load the chart: " + err.message); });
  }

  function drawAll(selector, fresh) {
    if (typeof Plotly === "undefined") { return; }
    cache = fresh ? {} : cache;
    document.querySelectorAll(selector).forEach(function (el) { draw(el, false); });
  }

  // Live: a running study's page shows new trials within seconds, without a reload.
  function live(box) {
    var busy = false, changes = 0;
    function tick() {
      if (busy || document.hidden) { return; }
      busy = true;
      getJSON(box.dataset.api).then(function (e) {
        if (e.version === box.dataset.version) { return null; }
        box.dataset.version = e.version;
        changes += 1;
        return fetch(window.location.href, { credentials: "same-origin" }).then(function (r) { return r.text(); }).then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html");
          document.querySelectorAll("[data-live]").forEach(function (old) {
            var next = fresh.getElementById(old.id);
            if (next) { old.replaceWith(document.importNode(next, true)); }
          });
          cache = {};
          drawAll("[data-chart=history], [data-chart=ttpt]", true);
          if (changes % 5 === 0) { drawAll("[data-chart=parallel], [data-chart=slices], [data-chart=importance]", true); }
          box.dataset.updates = String(changes);
        });
      }).catch(function () { /* the next tick tries again */ }).then(function () { busy = false; });
    }
    window.setInterval(tick, 2000);
  }

  // Compare needs two or more experiments.
  var compareForm = document.getElementById("compare-form");
  if (compareForm) {
    compareForm.addEventListener("submit", function (event) {
      // Oldest first, whatever the list's order.
      var ids = Array.from(compareForm.querySelectorAll("input[name=ids]:checked")).map(function (i) { return Number(i.value); })
        .sort(function (a, b) { return a - b; });
      event.preventDefault();
      if (ids.length < 2) { window.alert("Select two or more experiments to compare."); return; }
      window.location.href = root + "/compare?ids=" + ids.join(",");
    });
  }

  // Compare: the overlay's scale.
  document.querySelectorAll("input[name=scale]").forEach(function (input) {
    input.addEventListener("change", function () {
      var chart = document.getElementById("compare-chart");
      chart.dataset.scale = input.value;
      draw(chart, false);
    });
  });

  // The Pareto chart's pair of objectives (3 or more): picking the other axis's objective swaps them.
  var pair = document.getElementById("pareto-pair");
  if (pair) {
    var chosen = { x: pair.elements.x.value, y: pair.elements.y.value };
    pair.addEventListener("change", function (event) {
      var axis = event.target.name, other = axis === "x" ? "y" : "x";
      if (pair.elements[axis].value === pair.elements[other].value) { pair.elements[other].value = chosen[axis]; }
      chosen = { x: pair.elements.x.value, y: pair.elements.y.value };
      var chart = document.getElementById("pareto-chart");
      chart.dataset.src = pair.dataset.src + "?x=" + encodeURIComponent(chosen.x) + "&y=" + encodeURIComponent(chosen.y);
      draw(chart, false);
    });
  }

  drawAll("[data-chart]", false);
  var box = document.getElementById("experiment");
  if (box) { live(box); }
})();
