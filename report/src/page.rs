//! The page: what can be written as HTML is (the header, findings, tables), so the page reads
//! without its script; the charts are drawn by the script from a JSON blob.

use std::fmt::Write;

use analyzer::flamegraph::{self, StackBy, Stacks};
use analyzer::{Report, TraceIndex};
use base64::Engine;
use serde_json::json;
use traces::units::{format_bytes, format_count, format_duration};
use traces::{Event, EventKind, Header, MemorySample, Nanos, WorkerId};

use crate::columns::{Columns, TICK_NS};

const STYLE: &str = include_str!("../assets/report.css");
pub(crate) const FINDINGS_STYLE: &str = include_str!("../assets/findings.css");
const SCRIPT: &str = include_str!("../assets/report.js");

/// Memory samples kept per worker: enough for any chart width (ours).
const MAX_SAMPLES: usize = 4_000;
/// Groups drawn in the group graph at most: past this the boxes stop being readable (as the
/// TUI's Graph view).
const MAX_GRAPH_GROUPS: usize = 60;

pub(crate) struct Page<'a> {
    pub title: &'a str,
    pub header: &'a Header,
    pub index: &'a TraceIndex,
    pub report: &'a Report,
    pub stacks: &'a Stacks,
    pub columns: Columns,
    pub events: &'a [Event],
    pub memory: Vec<(WorkerId, &'a [MemorySample])>,
    /// The run replayed on other shapes, when its replay reproduces it.
    pub whatif: Option<&'a whatif::WhatIf>,
}

/// Text for HTML content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if traces::units::is_unprintable(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn svg_data_uri(svg: &[u8]) -> String {
    format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    )
}

impl Page<'_> {
    pub fn html(self) -> String {
        let mut out = String::with_capacity(1 << 20);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
             <meta name=\"generator\" content=\"taskscope {}\"/>\n\
             <title>{} — taskscope report</title>\n<style>\n{STYLE}{FINDINGS_STYLE}</style>\n\
             </head>\n<body>\n",
            env!("CARGO_PKG_VERSION"),
            escape(self.title)
        );
        self.header_section(&mut out);
        self.findings_section(&mut out);
        out.push_str(
            "<section id=\"stream-section\"><h2>Task stream</h2>\n\
             <p class=\"hint\">Wheel or +/− to zoom, drag or ←/→ to pan, 0 to reset; hover for a \
             phase. Transfer red, disk yellow, deserialize grey, compute coloured by group, failed \
             attempts crossed.</p>\n\
             <div class=\"controls\"><button data-zoom=\"in\">+</button>\
             <button data-zoom=\"out\">−</button><button data-zoom=\"reset\">reset</button>\
             <label><input type=\"checkbox\" id=\"show-critical\" checked=\"\"/> critical \
             path</label><span id=\"stream-range\"></span></div>\n\
             <div class=\"stream-wrap\"><canvas id=\"stream\" tabindex=\"0\"></canvas>\
             <div id=\"tooltip\" hidden=\"\"></div></div>\n<div id=\"legend\"></div>\n</section>\n",
        );
        out.push_str(
            "<section id=\"memory-section\"><h2>Memory</h2>\n\
             <p class=\"hint\">Per worker: managed (solid), unmanaged (light), spilled (line); \
             the target, spill, pause and terminate lines of its limit; pauses, kills and \
             arrivals marked.</p>\n<div id=\"memory\"></div>\n</section>\n",
        );
        self.groups_section(&mut out);
        self.group_graph_section(&mut out);
        self.flamegraph_section(&mut out);
        self.critical_path_section(&mut out);
        self.whatif_section(&mut out);
        let data = self.data();
        let _ = write!(
            out,
            "<script type=\"application/json\" id=\"ts-data\">{}</script>\n\
             <script>\n{SCRIPT}</script>\n</body>\n</html>\n",
            // No `<` at all inside the element (`</script>` would end it, `<!--` would change
            // how it is parsed): JSON has them only in strings, where `\u003c` means the same.
            data.replace('<', "\\u003c")
        );
        out
    }

    fn header_section(&self, out: &mut String) {
        let s = &self.report.summary;
        let workers = &self.header.cluster.workers;
        let threads: Vec<String> = {
            let mut per: Vec<u32> = workers.iter().map(|w| w.threads).collect();
            per.dedup();
            per.iter().map(u32::to_string).collect()
        };
        let shape = if workers.is_empty() {
            format!("{} workers", s.workers)
        } else {
            format!("{} workers × {} threads", workers.len(), threads.join("/"))
        };
        let limits: Vec<u64> = workers.iter().filter_map(|w| w.memory_limit).collect();
        let limit = match (limits.iter().min(), limits.iter().max()) {
            (Some(a), Some(b)) if a == b => format!(", {} memory limit each", format_bytes(*a)),
            (Some(a), Some(b)) => {
                format!(", {}–{} memory limits", format_bytes(*a), format_bytes(*b))
            }
            _ => String::new(),
        };
        let ok = s.tasks.saturating_sub(s.failed_tasks + s.lost_tasks);
        let _ = write!(
            out,
            "<header>\n<h1>{}</h1>\n<p class=\"what\">{} · {} · {}{}</p>\n<dl class=\"summary\">\
             <div><dt>wall time</dt><dd>{}</dd></div>\
             <div><dt>ideal time</dt><dd>{}</dd></div>\
             <div><dt>efficiency</dt><dd>{:.0}%</dd></div>\
             <div><dt>tasks</dt><dd>{} ok{}{}</dd></div>\
             <div><dt>groups</dt><dd>{}</dd></div>\
             </dl>\n",
            escape(self.title),
            escape(&s.producer),
            escape(&s.format),
            shape,
            limit,
            format_duration((s.wall_seconds * 1e9) as Nanos),
            format_duration((s.ideal_seconds * 1e9) as Nanos),
            s.efficiency * 100.0,
            format_count(ok),
            if s.failed_tasks > 0 {
                format!(", {} failed or cancelled", format_count(s.failed_tasks))
            } else {
                String::new()
            },
            if s.lost_tasks > 0 {
                format!(", {} lost with their worker", format_count(s.lost_tasks))
            } else {
                String::new()
            },
            format_count(s.groups as u64),
        );
        for warning in &self.report.warnings {
            let _ = writeln!(out, "<p class=\"warning\">{}</p>", escape(warning));
        }
        out.push_str("</header>\n");
    }

    fn findings_section(&self, out: &mut String) {
        out.push_str("<section id=\"findings\" class=\"taskscope-findings\"><h2>Findings</h2>\n");
        findings(self.report, out);
        out.push_str("</section>\n");
    }

    fn groups_section(&self, out: &mut String) {
        out.push_str(
            "<section id=\"groups-section\"><h2>Task groups</h2>\n\
             <p class=\"hint\">Click a column to sort; click a group to highlight it in the task \
             stream.</p>\n<table id=\"groups\" class=\"sortable\"><thead><tr>\
             <th data-sort=\"text\">group</th><th data-sort=\"num\">tasks</th>\
             <th data-sort=\"num\">total compute</th><th data-sort=\"num\">median</th>\
             <th data-sort=\"num\">max</th><th data-sort=\"num\">output</th>\
             <th data-sort=\"num\">transfer</th></tr></thead><tbody>\n",
        );
        let mut groups: Vec<&analyzer::GroupStats> = self.index.groups.iter().collect();
        groups.sort_by_key(|g| std::cmp::Reverse(g.compute_total()));
        for g in groups {
            let transfer = g.phases.ns(traces::Action::Transfer);
            let _ = writeln!(
                out,
                "<tr data-group=\"{name}\"><td>{name}</td><td data-v=\"{tasks}\">{tasks_s}</td>\
                 <td data-v=\"{total}\">{total_s}</td><td data-v=\"{median}\">{median_s}</td>\
                 <td data-v=\"{max}\">{max_s}</td><td data-v=\"{out_b}\">{out_s}</td>\
                 <td data-v=\"{tr}\">{tr_s}</td></tr>",
                name = escape(&g.name),
                tasks = g.tasks,
                tasks_s = format_count(g.tasks),
                total = g.compute_total(),
                total_s = format_duration(g.compute_total()),
                median = g.median_compute(),
                median_s = format_duration(g.median_compute()),
                max = g.compute_max(),
                max_s = format_duration(g.compute_max()),
                out_b = g.output_total,
                out_s = format_bytes(g.output_total),
                tr = transfer,
                tr_s = format_duration(transfer),
            );
        }
        out.push_str("</tbody></table>\n</section>\n");
    }

    fn group_graph_section(&self, out: &mut String) {
        out.push_str("<section id=\"graph-section\"><h2>Task group graph</h2>\n");
        let index = self.index;
        if !index.has_dependencies {
            out.push_str(
                "<p class=\"none\">This trace has no dependencies (Dask task streams and \
                 performance reports do not record them).</p>\n</section>\n",
            );
            return;
        }
        if index.groups.len() > MAX_GRAPH_GROUPS {
            let _ = writeln!(
                out,
                "<p class=\"none\">{} groups: too many to draw (at most {MAX_GRAPH_GROUPS}); \
                 the table above lists them.</p>\n</section>",
                index.groups.len()
            );
            return;
        }
        let edges = group_edges(index);
        let layers = layers(index.groups.len(), &edges);
        out.push_str(&graph_svg(index, &edges, &layers));
        out.push_str("</section>\n");
    }

    fn flamegraph_section(&self, out: &mut String) {
        out.push_str(
            "<section id=\"flamegraph-section\"><h2>Flamegraph</h2>\n\
             <div class=\"controls\"><label><input type=\"radio\" name=\"fg\" value=\"group\" \
             checked=\"\"/> by group</label> <label><input type=\"radio\" name=\"fg\" \
             value=\"worker\"/> by worker</label></div>\n",
        );
        for (by, name, hidden) in [
            (StackBy::Group, "group", ""),
            (StackBy::Worker, "worker", " hidden=\"\""),
        ] {
            let lines = self.stacks.lines(by);
            if lines.is_empty() {
                continue;
            }
            // inferno's SVG carries its own script: as an image it is shown, not run.
            if let Ok(svg) = flamegraph::svg(&lines, &format!("taskscope: {}", self.title)) {
                let _ = writeln!(
                    out,
                    "<img class=\"flamegraph\" id=\"fg-{name}\" alt=\"flamegraph by {name}\" \
                     src=\"{}\"{hidden}/>",
                    svg_data_uri(&svg)
                );
            }
        }
        out.push_str("</section>\n");
    }

    fn whatif_section(&self, out: &mut String) {
        out.push_str("<section id=\"whatif\"><h2>What if</h2>\n");
        let Some(w) = self.whatif else {
            let _ = write!(
                out,
                "<p class=\"none\">No replay here: the trace has neither dependencies nor graph \
                 submissions (a Dask task stream or performance report), has more than {} tasks, \
                 or its replay lands more than {:.0}% from the recorded wall time. \
                 <code>taskscope simulate</code> replays any trace and says why.</p>\n</section>\n",
                format_count(whatif::MAX_TASKS),
                whatif::CALIBRATION_BOUND * 100.0
            );
            return;
        };
        let _ = write!(
            out,
            "<p>The run replayed by taskscope's scheduler on other cluster shapes \
             (<code>taskscope simulate</code>): on its own shape ({}) the replay gives {} for \
             the recorded {} ({:+.1}%).</p>\n<table id=\"whatif-table\"><thead><tr>\
             <th>shape</th><th>predicted wall</th><th>vs recorded</th><th>utilisation</th>\
             <th>transferred</th></tr></thead><tbody>\n",
            w.recorded,
            format_duration(w.replayed_wall_ns),
            format_duration(w.recorded_wall_ns),
            w.calibration_error * 100.0
        );
        for (shape, p) in &w.predictions {
            let ratio = p.wall_ns as f64 / w.replayed_wall_ns.max(1) as f64;
            let _ = writeln!(
                out,
                "<tr><td>{shape}{}</td><td>{}</td><td>{ratio:.2}×</td><td>{:.0}%</td>\
                 <td>{}</td></tr>",
                if *shape == w.recorded {
                    " (recorded)"
                } else {
                    ""
                },
                format_duration(p.wall_ns),
                p.utilisation * 100.0,
                format_bytes(p.transferred_bytes)
            );
        }
        out.push_str("</tbody></table>\n");
        match &w.cpu {
            Some(cpu) => {
                let _ = writeln!(
                    out,
                    "<p>More workers stand on the recorded {}, whose {}{} the computing tasks \
                     share: past them, tasks slow each other down, each wanting its \
                     group's recorded share of a core ({}). <code>taskscope simulate --cores \
                     N</code> predicts a bigger machine.</p>",
                    if cpu.host_cores.len() == 1 {
                        "host"
                    } else {
                        "hosts"
                    },
                    cpu.cores_text(),
                    if cpu.host_cores.len() == 1 {
                        ""
                    } else {
                        " each"
                    },
                    cpu.shares_text()
                );
            }
            None => out.push_str(
                "<p>CPU is not modelled here (the trace has no CPU time per group, or no \
                 host's cores): each added worker is taken to bring its own cores.</p>\n",
            ),
        }
        let _ = write!(
            out,
            "<p>Critical path: {}, which no number of workers can beat.</p>\n</section>\n",
            format_duration(w.critical_path_ns)
        );
    }

    fn critical_path_section(&self, out: &mut String) {
        out.push_str("<section id=\"critical-path\"><h2>Critical path</h2>\n");
        let Some(path) = &self.report.critical_path else {
            out.push_str(
                "<p class=\"none\">This trace has no dependencies (Dask task streams and \
                 performance reports do not record them): record with the taskscope plugin to \
                 see the chain the job waited on.</p>\n</section>\n",
            );
            return;
        };
        let total = path.length_seconds.max(f64::MIN_POSITIVE);
        let _ = write!(
            out,
            "<p>{} tasks, {} from the first to the last: the chain of last-arriving inputs that \
             ended the job.</p>\n<div class=\"split\">",
            format_count(path.tasks),
            format_duration((path.length_seconds * 1e9) as Nanos)
        );
        for (class, label, seconds) in [
            ("compute", "compute", path.compute_seconds),
            ("transfer", "transfer", path.transfer_seconds),
            ("wait", "waiting", path.wait_seconds),
        ] {
            let _ = write!(
                out,
                "<span class=\"{class}\" style=\"flex-grow:{:.4}\" title=\"{label} {}\">\
                 {label} {}</span>",
                seconds / total,
                format_duration((seconds * 1e9) as Nanos),
                format_duration((seconds * 1e9) as Nanos)
            );
        }
        out.push_str("</div>\n<ol class=\"chain\">");
        for (group, tasks) in &path.groups {
            let _ = write!(
                out,
                "<li data-group=\"{g}\"><code>{g}</code> ×{tasks}</li>",
                g = escape(group)
            );
        }
        out.push_str("</ol>\n</section>\n");
    }

    /// The charts' data.
    fn data(self) -> String {
        let encoded = self.columns.encode();
        let origin = encoded.origin;
        let tick = |t: Nanos| t.saturating_sub(origin) / TICK_NS;
        let names: std::collections::BTreeMap<WorkerId, String> = self
            .index
            .workers
            .keys()
            .map(|id| (*id, self.index.worker_name(*id)))
            .collect();
        let lanes: Vec<_> = encoded
            .lanes
            .iter()
            .zip(&encoded.counts)
            .map(|(&(worker, thread), count)| {
                json!({"worker": worker, "thread": thread, "count": count,
                       "name": names.get(&worker).cloned().unwrap_or_else(|| format!("worker-{worker}"))})
            })
            .collect();
        let fractions = self.header.cluster.memory;
        let memory: Vec<_> = self
            .memory
            .iter()
            .filter(|(_, samples)| !samples.is_empty())
            .map(|(id, samples)| {
                let step = samples.len().div_ceil(MAX_SAMPLES).max(1);
                let points: Vec<[u64; 4]> = samples
                    .iter()
                    .step_by(step)
                    .map(|m| [tick(m.time), m.managed, m.unmanaged, m.spilled])
                    .collect();
                json!({
                    "worker": id,
                    "name": names.get(id).cloned().unwrap_or_else(|| format!("worker-{id}")),
                    "limit": self.index.workers.get(id).and_then(|w| w.memory_limit),
                    "samples": points,
                })
            })
            .collect();
        let events: Vec<_> = self
            .events
            .iter()
            .filter_map(|e| {
                let (kind, worker) = match &e.kind {
                    EventKind::WorkerPaused { worker } => ("paused", *worker),
                    EventKind::WorkerResumed { worker } => ("resumed", *worker),
                    EventKind::WorkerKilled { worker, .. } => ("killed", *worker),
                    EventKind::WorkerAdded { worker } => ("added", worker.id),
                    EventKind::WorkerRemoved { worker } => ("removed", *worker),
                    _ => return None,
                };
                Some(json!({"t": tick(e.time), "kind": kind, "worker": worker}))
            })
            .collect();
        // The critical path's runs, to outline in the stream: (worker, thread, start, stop).
        let critical: Vec<[u64; 4]> = self
            .report
            .critical_path
            .iter()
            .flat_map(|p| p.runs.iter())
            .map(|&i| {
                let r = &self.index.runs[i as usize];
                [
                    u64::from(r.worker),
                    u64::from(r.thread),
                    tick(r.busy_start),
                    tick(r.busy_stop),
                ]
            })
            .collect();
        json!({
            "critical": critical,
            "tick_ns": TICK_NS,
            "lanes": lanes,
            "groups": encoded.groups,
            "keys": encoded.keys,
            "phases": encoded.data,
            "actions": traces::Action::ALL.map(traces::Action::as_str),
            "memory": memory,
            "fractions": [fractions.target, fractions.spill, fractions.pause, fractions.terminate],
            "events": events,
            "wall": tick(origin + self.index.wall_ns().max(1)).max(1),
            "first": self.index.first.saturating_sub(origin) / TICK_NS,
        })
        .to_string()
    }
}

fn evidence_value(name: &str, value: f64) -> String {
    if name.ends_with("_bytes") {
        format_bytes(value.max(0.0) as u64)
    } else if name.ends_with("_seconds") {
        format_duration((value.max(0.0) * 1e9) as Nanos)
    } else if name.ends_with("_share") {
        format!("{:.1}%", value * 100.0)
    } else if name.ends_with("_ratio") {
        format!("{value:.2}×")
    } else if value.fract() == 0.0 && value.abs() < 1e15 {
        format_count(value.abs() as u64)
    } else {
        format!("{value:.3}")
    }
}

fn scope_text(f: &analyzer::Finding) -> String {
    let s = &f.scope;
    let mut parts = Vec::new();
    if let Some(g) = &s.group {
        parts.push(format!("group <code>{}</code>", escape(g)));
    }
    if let Some(w) = &s.worker {
        parts.push(format!("worker <code>{}</code>", escape(w)));
    }
    if let Some((a, b)) = s.time_range {
        parts.push(format!("{a:.2}–{b:.2} s"));
    }
    if !s.keys.is_empty() {
        let keys: Vec<String> = s
            .keys
            .iter()
            .take(3)
            .map(|k| format!("<code>{}</code>", escape(k)))
            .collect();
        parts.push(format!("e.g. {}", keys.join(", ")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(
            "Scope: {} (click to show it in the charts)",
            parts.join("; ")
        )
    }
}

/// Group-level edges `(input group, group)` from the runs' dependencies, without self-loops.
fn group_edges(index: &TraceIndex) -> Vec<(u32, u32)> {
    let mut edges: Vec<(u32, u32)> = Vec::new();
    for run in &index.runs {
        let from = run.deps_from as usize;
        for &hash in &index.dep_hashes[from..from + run.deps_len as usize] {
            if let Some(dep) = index.latest_run(hash)
                && dep.group != run.group
            {
                edges.push((dep.group, run.group));
            }
        }
    }
    edges.sort_unstable();
    edges.dedup();
    edges
}

/// Each group's layer: the longest chain of groups before it (cycles cut after as many rounds
/// as there are groups).
fn layers(groups: usize, edges: &[(u32, u32)]) -> Vec<usize> {
    let mut layer = vec![0usize; groups];
    for _ in 0..groups {
        let mut changed = false;
        for &(a, b) in edges {
            if layer[b as usize] < layer[a as usize] + 1 && layer[a as usize] + 1 < groups {
                layer[b as usize] = layer[a as usize] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

/// The page script's colour for a group (the same FNV-1a hash over UTF-16 units).
fn group_color(name: &str) -> String {
    let mut h: u32 = 2_166_136_261;
    for unit in name.encode_utf16() {
        h ^= u32::from(unit);
        h = h.wrapping_mul(16_777_619);
    }
    format!("hsl({}, 55%, 50%)", h % 360)
}

/// The group DAG as an SVG: layers left to right, a box per group with its task count and
/// compute time, a line per dependency.
fn graph_svg(index: &TraceIndex, edges: &[(u32, u32)], layers: &[usize]) -> String {
    const BOX_W: usize = 190;
    const BOX_H: usize = 44;
    const GAP_X: usize = 60;
    const GAP_Y: usize = 14;
    let columns = layers.iter().max().map_or(1, |m| m + 1);
    let mut rows = vec![0usize; columns];
    let mut place = vec![(0usize, 0usize); layers.len()];
    for (g, &l) in layers.iter().enumerate() {
        place[g] = (l, rows[l]);
        rows[l] += 1;
    }
    let height = rows.iter().max().copied().unwrap_or(1) * (BOX_H + GAP_Y) + GAP_Y;
    let width = columns * (BOX_W + GAP_X);
    let xy = |g: u32| {
        let (l, r) = place[g as usize];
        (l * (BOX_W + GAP_X) + 4, r * (BOX_H + GAP_Y) + GAP_Y)
    };
    let mut svg = format!(
        "<svg id=\"group-graph\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} \
         {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" \
         aria-label=\"task group graph\">"
    );
    for &(a, b) in edges {
        let ((ax, ay), (bx, by)) = (xy(a), xy(b));
        let _ = write!(
            svg,
            "<line class=\"edge\" x1=\"{}\" y1=\"{}\" x2=\"{bx}\" y2=\"{}\"/>",
            ax + BOX_W,
            ay + BOX_H / 2,
            by + BOX_H / 2
        );
    }
    for (g, group) in index.groups.iter().enumerate() {
        let (x, y) = xy(g as u32);
        let name: String = group.name.chars().take(26).collect();
        let _ = write!(
            svg,
            "<g class=\"node\" data-group=\"{group_attr}\"><title>{group_attr}</title>\
             <rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"4\" \
             style=\"stroke:{color}\"/><text x=\"{tx}\" y=\"{ty1}\">{name}</text>\
             <text class=\"sub\" x=\"{tx}\" y=\"{ty2}\">{tasks} tasks · {total}</text></g>",
            group_attr = escape(&group.name),
            color = group_color(&group.name),
            tx = x + 8,
            ty1 = y + 18,
            ty2 = y + 35,
            name = escape(&name),
            tasks = format_count(group.tasks),
            total = format_duration(group.compute_total()),
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The findings as articles: severity, rule, impact, title, evidence, fix and scope.
pub(crate) fn findings(report: &Report, out: &mut String) {
    if report.findings.is_empty() {
        out.push_str("<p class=\"none\">No findings: nothing the rules flag.</p>\n");
    }
    for (i, f) in report.findings.iter().enumerate() {
        let scope = &f.scope;
        let _ = write!(
            out,
            "<article class=\"finding sev-{sev}\" id=\"finding-{i}\" data-finding=\"{i}\"\
             {group}{worker}{range}>\n<h3><span class=\"sev\">{sev}</span> \
             <code class=\"rule\">{rule}</code> <span class=\"impact\">~{impact}</span></h3>\n\
             <p class=\"title\">{title}</p>\n<table class=\"evidence\"><tbody>",
            sev = f.severity,
            rule = f.rule,
            impact = format_duration((f.impact_seconds * 1e9) as Nanos)
                + match f.impact_from {
                    analyzer::ImpactSource::Estimate => "",
                    analyzer::ImpactSource::Simulation => " simulated",
                },
            title = escape(&f.title),
            group = scope
                .group
                .as_deref()
                .map(|g| format!(" data-group=\"{}\"", escape(g)))
                .unwrap_or_default(),
            worker = scope
                .worker
                .as_deref()
                .map(|w| format!(" data-worker=\"{}\"", escape(w)))
                .unwrap_or_default(),
            range = scope
                .time_range
                .map(|(a, b)| format!(" data-from=\"{a}\" data-to=\"{b}\""))
                .unwrap_or_default(),
        );
        for (name, value) in &f.evidence {
            let _ = write!(
                out,
                "<tr><th>{}</th><td>{}</td></tr>",
                escape(name),
                evidence_value(name, *value)
            );
        }
        let simulated = analyzer::report::simulated_sentence(f).map_or(String::new(), |sentence| {
            format!(
                "<p class=\"simulated\"><b>Simulated:</b> {}</p>\n",
                escape(&sentence)
            )
        });
        let _ = write!(
            out,
            "</tbody></table>\n<p class=\"advice\"><b>Fix:</b> {}</p>\n{simulated}\
             <p class=\"scope\">{}</p>\n</article>\n",
            escape(&f.advice),
            scope_text(f)
        );
    }
}
