// taskscope report: decodes the task stream's columns and draws the charts. No network, no
// libraries: a canvas per chart, phases aggregated to pixels so a million tasks stay smooth.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("ts-data").textContent);
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const ACTION = { queued: 0, transfer: 1, deserialize: 2, compute: 3, diskWrite: 4, diskRead: 5 };
  const highlight = { group: null, worker: null };

  // --- units -----------------------------------------------------------------------------
  function duration(ticks) {
    const ns = ticks * data.tick_ns;
    if (ns < 1e3) return ns.toFixed(0) + " ns";
    if (ns < 1e6) return (ns / 1e3).toPrecision(3) + " µs";
    if (ns < 1e9) return (ns / 1e6).toPrecision(3) + " ms";
    if (ns < 60e9) return (ns / 1e9).toPrecision(3) + " s";
    return (ns / 60e9).toPrecision(3) + " min";
  }
  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return (i ? n.toPrecision(3) : n.toFixed(0)) + " " + units[i];
  }
  function groupColor(name) {
    let h = 2166136261;
    for (let i = 0; i < name.length; i++) { h ^= name.charCodeAt(i); h = Math.imul(h, 16777619); }
    const dark = matchMedia("(prefers-color-scheme: dark)").matches;
    return "hsl(" + ((h >>> 0) % 360) + ", 55%, " + (dark ? 58 : 50) + "%)";
  }

  // --- the task stream's columns -------------------------------------------------------------
  async function gunzip(base64) {
    const raw = atob(base64);
    const packed = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) packed[i] = raw.charCodeAt(i);
    const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  function decode(buf) {
    const total = data.lanes.reduce((n, l) => n + l.count, 0);
    const withKeys = data.keys.length > 0;
    const start = new Float64Array(total), dur = new Float64Array(total);
    const code = new Uint32Array(total), task = new Uint32Array(withKeys ? total : 0);
    const laneFrom = new Uint32Array(data.lanes.length + 1);
    let at = 0, row = 0;
    function next() {
      let v = 0, mul = 1, b;
      do { b = buf[at++]; v += (b & 0x7f) * mul; mul *= 128; } while (b & 0x80);
      return v;
    }
    data.lanes.forEach(function (lane, l) {
      laneFrom[l] = row;
      let t = 0;
      for (let i = 0; i < lane.count; i++, row++) {
        t += next();
        start[row] = t; dur[row] = next(); code[row] = next();
        if (withKeys) task[row] = next();
      }
    });
    laneFrom[data.lanes.length] = row;
    return { start, dur, code, task, laneFrom };
  }

  // --- task stream -----------------------------------------------------------------------
  const canvas = document.getElementById("stream");
  const tooltip = document.getElementById("tooltip");
  const ROW = 16, AXIS = 22, LABEL = 120;
  let cols = null;
  const view = { t0: 0, t1: data.wall };

  function laneRows() { return data.lanes.length; }
  function resize() {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 800;
    const height = AXIS + Math.max(1, laneRows()) * ROW + 4;
    canvas.style.height = height + "px";
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  }
  function firstAtOrAfter(from, to, t) {
    let lo = from, hi = to;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (cols.start[mid] < t) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function colorOf(c) {
    const action = c & 7;
    if (action === ACTION.transfer) return css("--transfer");
    if (action === ACTION.deserialize) return css("--deserialize");
    if (action === ACTION.diskWrite || action === ACTION.diskRead) return css("--disk");
    if (action === ACTION.queued) return css("--queued");
    return groupColors[c >>> 4];
  }
  let groupColors = [];
  function draw() {
    if (!cols) return;
    const ctx = canvas.getContext("2d");
    const width = canvas.clientWidth || 800;
    const plot = width - LABEL;
    const span = Math.max(view.t1 - view.t0, 1e-9);
    const scale = plot / span;
    ctx.clearRect(0, 0, width, canvas.clientHeight);
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = css("--muted");
    ctx.textBaseline = "middle";
    // Axis: about eight ticks at round durations.
    const step = Math.pow(10, Math.floor(Math.log10(span / 8)));
    const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => span / s <= 10) || step * 10;
    ctx.strokeStyle = css("--line");
    for (let t = Math.ceil(view.t0 / nice) * nice; t <= view.t1; t += nice) {
      const x = LABEL + (t - view.t0) * scale;
      ctx.beginPath(); ctx.moveTo(x, AXIS - 4); ctx.lineTo(x, canvas.clientHeight); ctx.stroke();
      ctx.fillText(duration(t), x + 2, AXIS / 2);
    }
    const dimGroup = highlight.group === null ? -1 : data.groups.indexOf(highlight.group);
    data.lanes.forEach(function (lane, l) {
      const y = AXIS + l * ROW;
      const dimLane = highlight.worker !== null && lane.name !== highlight.worker;
      ctx.globalAlpha = dimLane ? 0.25 : 1;
      ctx.fillStyle = css("--muted");
      ctx.fillText(("w" + lane.worker + "/t" + lane.thread), 4, y + ROW / 2);
      const from = cols.laneFrom[l], to = cols.laneFrom[l + 1];
      // Back one: the phase before the window may reach into it.
      let i = Math.max(from, firstAtOrAfter(from, to, view.t0) - 1);
      let lastPixel = -1;
      for (; i < to && cols.start[i] < view.t1; i++) {
        const end = cols.start[i] + cols.dur[i];
        if (end < view.t0) continue;
        const x0 = LABEL + Math.max(0, (cols.start[i] - view.t0) * scale);
        const x1 = LABEL + Math.min(plot, (end - view.t0) * scale);
        // Aggregate to pixels: under a pixel wide, one phase per pixel is drawn.
        const pixel = Math.floor(x0);
        if (x1 - x0 < 1 && pixel === lastPixel) continue;
        lastPixel = pixel;
        const c = cols.code[i];
        const dim = dimGroup >= 0 && (c >>> 4) !== dimGroup;
        ctx.globalAlpha = dimLane || dim ? 0.18 : 1;
        ctx.fillStyle = colorOf(c);
        const h = (c & 7) === ACTION.queued ? 3 : ROW - 3;
        ctx.fillRect(x0, y + (ROW - 3 - h) + 1, Math.max(1, x1 - x0), h);
        if (c & 8 && x1 - x0 >= 4) {
          // A failed attempt: crossed.
          ctx.strokeStyle = css("--critical");
          ctx.beginPath();
          ctx.moveTo(x0, y + 1); ctx.lineTo(x1, y + ROW - 2);
          ctx.moveTo(x0, y + ROW - 2); ctx.lineTo(x1, y + 1);
          ctx.stroke();
          ctx.strokeStyle = css("--line");
        }
      }
    });
    ctx.globalAlpha = 1;
    if (showCritical.checked) drawCritical(ctx, scale, plot);
    document.getElementById("stream-range").textContent =
      duration(view.t0) + " – " + duration(view.t1) + " (" + duration(span) + " shown)";
  }
  // The critical path: the tasks the job's end waited on, outlined.
  const showCritical = document.getElementById("show-critical") || { checked: false };
  function drawCritical(ctx, scale, plot) {
    const laneOf = new Map(data.lanes.map((l, i) => [l.worker + "/" + l.thread, i]));
    ctx.strokeStyle = css("--fg");
    ctx.lineWidth = 2;
    data.critical.forEach(function ([worker, thread, start, stop]) {
      const l = laneOf.get(worker + "/" + thread);
      if (l === undefined || stop < view.t0 || start > view.t1) return;
      const x0 = LABEL + Math.max(0, (start - view.t0) * scale);
      const x1 = LABEL + Math.min(plot, (stop - view.t0) * scale);
      ctx.strokeRect(x0, AXIS + l * ROW + 0.5, Math.max(2, x1 - x0), ROW - 2);
    });
    ctx.lineWidth = 1;
  }
  showCritical.addEventListener && showCritical.addEventListener("change", draw);
  function zoom(factor, at) {
    const width = (canvas.clientWidth || 800) - LABEL;
    const span = view.t1 - view.t0;
    const t = view.t0 + ((at === undefined ? width / 2 : at - LABEL) / width) * span;
    const next = Math.min(Math.max(span * factor, 1), data.wall * 1.05);
    view.t0 = Math.max(0, t - (t - view.t0) * (next / span));
    view.t1 = view.t0 + next;
    draw();
  }
  function pan(fraction) {
    const span = view.t1 - view.t0;
    view.t0 = Math.min(Math.max(0, view.t0 + span * fraction), Math.max(0, data.wall - span));
    view.t1 = view.t0 + span;
    draw();
  }
  function reset() { view.t0 = 0; view.t1 = data.wall; draw(); }
  function phaseAt(px, py) {
    const l = Math.floor((py - AXIS) / ROW);
    if (l < 0 || l >= data.lanes.length || px < LABEL) return -1;
    const width = (canvas.clientWidth || 800) - LABEL;
    const t = view.t0 + ((px - LABEL) / width) * (view.t1 - view.t0);
    const slack = (view.t1 - view.t0) / width; // one pixel
    const from = cols.laneFrom[l], to = cols.laneFrom[l + 1];
    let i = firstAtOrAfter(from, to, t + slack) - 1;
    for (; i >= from && i >= firstAtOrAfter(from, to, t - 50 * slack) - 1; i--) {
      if (cols.start[i] <= t + slack && cols.start[i] + cols.dur[i] >= t - slack) return i;
    }
    return -1;
  }
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    zoom(e.deltaY > 0 ? 1.25 : 0.8, e.offsetX);
  }, { passive: false });
  let dragging = null;
  canvas.addEventListener("mousedown", (e) => { dragging = { x: e.offsetX, t0: view.t0 }; });
  window.addEventListener("mouseup", () => { dragging = null; });
  canvas.addEventListener("mousemove", function (e) {
    if (!cols) return;
    if (dragging) {
      const width = (canvas.clientWidth || 800) - LABEL;
      const span = view.t1 - view.t0;
      view.t0 = Math.max(0, dragging.t0 - ((e.offsetX - dragging.x) / width) * span);
      view.t1 = view.t0 + span;
      draw();
      return;
    }
    const i = phaseAt(e.offsetX, e.offsetY);
    if (i < 0) { tooltip.hidden = true; return; }
    const c = cols.code[i];
    const lane = data.lanes[data.lanes.findIndex((_, l) => cols.laneFrom[l + 1] > i)];
    const key = data.keys.length ? data.keys[cols.task[i]] : null;
    tooltip.textContent = "";
    const lines = [
      key ? "key " + key : null,
      "group " + data.groups[c >>> 4],
      data.actions[c & 7] + " " + duration(cols.dur[i]) + " at " + duration(cols.start[i]) +
        (c & 8 ? " (attempt failed)" : ""),
      lane ? "worker " + lane.name + ", thread " + lane.thread : null,
    ].filter(Boolean);
    lines.forEach(function (text) {
      const div = document.createElement("div");
      div.textContent = text;
      tooltip.appendChild(div);
    });
    tooltip.hidden = false;
    tooltip.style.left = Math.min(e.offsetX + 12, canvas.clientWidth - 300) + "px";
    tooltip.style.top = (e.offsetY + 14) + "px";
  });
  canvas.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  canvas.addEventListener("keydown", function (e) {
    const keys = { "+": () => zoom(0.8), "=": () => zoom(0.8), "-": () => zoom(1.25),
      ArrowLeft: () => pan(-0.2), ArrowRight: () => pan(0.2), "0": reset };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
  document.querySelectorAll("[data-zoom]").forEach(function (b) {
    b.addEventListener("click", function () {
      ({ in: () => zoom(0.8), out: () => zoom(1.25), reset: reset })[b.dataset.zoom]();
    });
  });

  function legend() {
    const box = document.getElementById("legend");
    const entries = [["transfer", css("--transfer")], ["disk", css("--disk")],
      ["deserialize", css("--deserialize")]];
    data.groups.slice(0, 40).forEach((g, i) => entries.push([g, groupColors[i]]));
    entries.forEach(function ([name, color]) {
      const span = document.createElement("span");
      span.textContent = name;
      span.style.setProperty("--c", color);
      box.appendChild(span);
    });
  }

  // --- memory ----------------------------------------------------------------------------
  function drawMemory() {
    const box = document.getElementById("memory");
    if (!data.memory.length) {
      const p = document.createElement("p");
      p.className = "none";
      p.textContent = "This trace has no memory samples (Dask task streams and performance " +
        "reports do not record them).";
      box.appendChild(p);
      return;
    }
    data.memory.forEach(function (w) {
      const div = document.createElement("div");
      div.className = "memory-worker";
      const h = document.createElement("h4");
      h.textContent = w.name + (w.limit ? " — limit " + bytes(w.limit) : "");
      const c = document.createElement("canvas");
      div.appendChild(h); div.appendChild(c); box.appendChild(div);
      const ratio = window.devicePixelRatio || 1;
      const width = c.clientWidth || 800, height = c.clientHeight || 130;
      c.width = width * ratio; c.height = height * ratio;
      const ctx = c.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      const peak = w.samples.reduce((m, s) => Math.max(m, s[1] + s[2], s[3]), 1);
      const top = Math.max(peak, w.limit || 0) * 1.05;
      const x = (t) => (t / data.wall) * width;
      const y = (v) => height - (v / top) * height;
      function area(value, color) {
        ctx.fillStyle = color;
        ctx.beginPath();
        ctx.moveTo(x(w.samples[0][0]), height);
        w.samples.forEach((s, i) => {
          const next = w.samples[i + 1];
          ctx.lineTo(x(s[0]), y(value(s)));
          ctx.lineTo(x(next ? next[0] : s[0]), y(value(s)));
        });
        ctx.lineTo(x(w.samples[w.samples.length - 1][0]), height);
        ctx.fill();
      }
      area((s) => s[1] + s[2], css("--unmanaged"));
      area((s) => s[1], css("--managed"));
      ctx.strokeStyle = css("--spilled"); ctx.lineWidth = 1.5;
      ctx.beginPath();
      w.samples.forEach((s, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(s[0]), y(s[3])));
      ctx.stroke();
      ctx.lineWidth = 1;
      if (w.limit) {
        ["target", "spill", "pause", "terminate"].forEach(function (name, i) {
          const v = w.limit * data.fractions[i];
          ctx.strokeStyle = css(i < 2 ? "--moderate" : "--critical");
          ctx.setLineDash([4, 3]);
          ctx.beginPath(); ctx.moveTo(0, y(v)); ctx.lineTo(width, y(v)); ctx.stroke();
          ctx.setLineDash([]);
          ctx.fillStyle = css("--muted");
          ctx.font = "10px system-ui, sans-serif";
          ctx.fillText(name, width - 56, y(v) - 2);
        });
      }
      data.events.filter((e) => e.worker === w.worker).forEach(function (e) {
        ctx.strokeStyle = css(e.kind === "killed" ? "--critical" :
          e.kind === "paused" ? "--severe" : "--muted");
        ctx.beginPath(); ctx.moveTo(x(e.t), 0); ctx.lineTo(x(e.t), height); ctx.stroke();
        ctx.fillStyle = ctx.strokeStyle;
        ctx.fillText(e.kind, x(e.t) + 2, 10);
      });
    });
  }

  // --- groups table, flamegraph, highlights ------------------------------------------------
  function sortable(table) {
    table.querySelectorAll("th").forEach(function (th, col) {
      let descending = true;
      th.addEventListener("click", function () {
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        const numeric = th.dataset.sort === "num";
        rows.sort(function (a, b) {
          const x = a.cells[col], y = b.cells[col];
          const d = numeric ? Number(x.dataset.v) - Number(y.dataset.v)
            : x.textContent.localeCompare(y.textContent);
          return descending ? -d : d;
        });
        descending = !descending;
        rows.forEach((r) => body.appendChild(r));
      });
    });
  }
  function select(group, worker, range) {
    highlight.group = group; highlight.worker = worker;
    document.querySelectorAll("#groups tbody tr, #group-graph .node").forEach(function (tr) {
      tr.classList.toggle("selected", group !== null && tr.dataset.group === group);
    });
    if (range) {
      const pad = (range[1] - range[0]) * 0.05;
      view.t0 = Math.max(0, range[0] - pad + data.first);
      view.t1 = Math.max(view.t0 + 1, range[1] + pad + data.first);
    }
    draw();
  }
  document.querySelectorAll(".finding").forEach(function (f) {
    f.addEventListener("click", function () {
      document.querySelectorAll(".finding").forEach((o) => o.classList.remove("selected"));
      f.classList.add("selected");
      const range = f.dataset.from !== undefined ?
        [Number(f.dataset.from) * 1e9 / data.tick_ns, Number(f.dataset.to) * 1e9 / data.tick_ns] : null;
      select(f.dataset.group || null, f.dataset.worker || null, range);
      document.getElementById("stream-section").scrollIntoView({ behavior: "smooth" });
    });
  });
  document.querySelectorAll("#groups tbody tr, ol.chain li, #group-graph .node").forEach(function (tr) {
    tr.addEventListener("click", function () {
      select(highlight.group === tr.dataset.group ? null : tr.dataset.group, null, null);
    });
  });
  document.querySelectorAll("input[name=fg]").forEach(function (radio) {
    radio.addEventListener("change", function () {
      document.querySelectorAll("img.flamegraph").forEach(function (img) {
        img.hidden = img.id !== "fg-" + radio.value;
      });
    });
  });
  const groups = document.getElementById("groups");
  if (groups) sortable(groups);

  groupColors = data.groups.map(groupColor);
  legend();
  drawMemory();
  resize();
  window.addEventListener("resize", function () { resize(); draw(); });
  const ready = data.lanes.length ? gunzip(data.phases).then(decode) : Promise.resolve(null);
  ready.then(function (decoded) {
    cols = decoded;
    draw();
    document.body.dataset.ready = "1";
  });
})();
