//! `taskscope simulate`: replays a trace on other cluster shapes with the engine's scheduler
//! and prints the predicted wall times, Sparklens-style.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use engine::simulate::{Fix, Model, Prediction, Replay, Shape, relative_error, simulate};
use serde_json::json;
use traces::units::{format_bytes, format_duration, printable};

use crate::cli::{OutputFormat, SimulateArgs};

pub fn run(args: &SimulateArgs) -> Result<()> {
    let name = args.trace.display().to_string();
    let file = Replay::open(&args.trace)?;
    let header = file.header;
    let replay = file
        .replay
        .with_context(|| format!("cannot replay {}", printable(&name)))?;
    crate::print_warnings(&file.warnings);

    let recorded = &replay.recorded;
    let mut base = Model::recorded(&replay, header.cluster.memory, recorded.shape);
    match args.memory_limit {
        Some(0) => base.memory_limit = None,
        Some(limit) => base.memory_limit = Some(limit),
        None => {}
    }
    if let Some(bandwidth) = args.bandwidth {
        base.network.bandwidth = Some(bandwidth);
    }
    if let Some(latency) = args.latency {
        base.set_latency(latency);
    }
    base.cores = args.cores;
    let shapes = shapes(args, recorded.shape);
    // The recorded shape first: its prediction is the calibration.
    let mut all = vec![recorded.shape];
    all.extend(shapes.iter().copied().filter(|&s| s != recorded.shape));
    let predictions = predict_all(&replay, &base, &all);
    let fixed = args
        .fix
        .and_then(|fix| replay.fixed(fix))
        .map(|fixed| predict_all(&fixed, &base, &all));
    let calibration = &predictions[0];
    let critical_path = replay.critical_path_ns(&base);
    // In the order asked for.
    let listed: Vec<Row> = shapes
        .iter()
        .map(|shape| {
            let i = all
                .iter()
                .position(|s| s == shape)
                .expect("every shape ran");
            Row {
                shape: *shape,
                prediction: &predictions[i],
                fixed: fixed.as_ref().map(|f| &f[i]),
            }
        })
        .collect();
    let text = match args.format {
        OutputFormat::Text => render_text(
            &name,
            &replay,
            &base,
            calibration,
            &listed,
            critical_path,
            args.fix,
        ),
        OutputFormat::Json => {
            let cpu = replay.cpu_model(&base);
            let predictions: Vec<_> = listed
                .iter()
                .map(|row| {
                    let p = row.prediction;
                    json!({
                        "workers": row.shape.workers,
                        "threads": row.shape.threads,
                        "wall_seconds": seconds(p.wall_ns),
                        "utilisation": p.utilisation,
                        "transferred_bytes": p.transferred_bytes,
                        "spilled_bytes": p.spilled_bytes,
                        "workers_killed": p.kills,
                        "attempts": p.attempts,
                        "fixed_wall_seconds": row.fixed.map(|f| seconds(f.wall_ns)),
                    })
                })
                .collect();
            let value = json!({
                "recorded": {
                    "workers": recorded.shape.workers,
                    "threads": recorded.shape.threads,
                    "wall_seconds": seconds(recorded.wall_ns),
                    "utilisation": recorded.utilisation,
                    "replayed_wall_seconds": seconds(calibration.wall_ns),
                    "error": relative_error(calibration.wall_ns, recorded.wall_ns),
                },
                "model": {
                    "bandwidth_bytes_per_second": base.network.bandwidth,
                    "latency_seconds": seconds(base.network.latency_ns),
                    // A task fetching from k peers at once (k = 1..10) waits the slowest.
                    "gather_latency_seconds": (1..=engine::CONCURRENT_GATHERS)
                        .map(|k| seconds(base.gather_latency_ns(k)))
                        .collect::<Vec<f64>>(),
                    "dispatch_seconds": seconds(base.dispatch_ns),
                    "round_trip_seconds": seconds(base.ready_latency_ns),
                    "inline_bytes_per_second": base.inline_bps,
                    "memory_limit_bytes": base.memory_limit,
                    "has_dependencies": replay.has_dependencies,
                    "unknown_dependencies": replay.unknown_dependencies,
                    "host_cores": cpu.as_ref().map(|c| &c.host_cores),
                    "cpu_share": cpu.as_ref().map(|c| [c.shares.0, c.shares.1]),
                },
                "fix": args.fix.map(|fix| json!({
                    "rule": fix.rule(),
                    "applies": fix.describe(),
                    "changes_the_trace": fixed.is_some(),
                })),
                "predictions": predictions,
                "critical_path_seconds": seconds(critical_path),
            });
            format!("{}\n", serde_json::to_string_pretty(&value)?)
        }
    };
    crate::output::print(&text)
}

/// One shape's predictions, as printed.
struct Row<'a> {
    shape: Shape,
    prediction: &'a Prediction,
    /// With `--fix`.
    fixed: Option<&'a Prediction>,
}

/// The cross product of `--workers` and `--threads`, in that order, each defaulting to the
/// recorded shape's (workers: 1, 2, 4 and 8 times the recorded).
fn shapes(args: &SimulateArgs, recorded: Shape) -> Vec<Shape> {
    let workers: Vec<u32> = if args.workers.is_empty() {
        engine::simulate::default_shapes(recorded)
            .iter()
            .map(|s| s.workers)
            .collect()
    } else {
        args.workers.clone()
    };
    let threads = if args.threads.is_empty() {
        vec![recorded.threads]
    } else {
        args.threads.clone()
    };
    let mut shapes = Vec::new();
    for &w in &workers {
        for &t in &threads {
            let shape = Shape {
                workers: w,
                threads: t,
            };
            if !shapes.contains(&shape) {
                shapes.push(shape);
            }
        }
    }
    shapes
}

/// One replay per shape, on as many threads as the machine has.
fn predict_all(replay: &Replay, base: &Model, shapes: &[Shape]) -> Vec<Prediction> {
    let parallel = std::thread::available_parallelism().map_or(1, usize::from);
    let mut out: Vec<Option<Prediction>> = vec![None; shapes.len()];
    for (chunk_shapes, chunk_out) in shapes.chunks(parallel).zip(out.chunks_mut(parallel)) {
        std::thread::scope(|scope| {
            for (shape, slot) in chunk_shapes.iter().zip(chunk_out.iter_mut()) {
                let model = Model {
                    shape: *shape,
                    ..base.clone()
                };
                scope.spawn(move || *slot = Some(simulate(replay, &model)));
            }
        });
    }
    out.into_iter()
        .map(|p| p.expect("every shape was simulated"))
        .collect()
}

fn render_text(
    name: &str,
    replay: &Replay,
    model: &Model,
    calibration: &Prediction,
    listed: &[Row],
    critical_path: u64,
    fix: Option<Fix>,
) -> String {
    let recorded = &replay.recorded;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "calibration: replayed on its own shape ({}), the model gives {} for a recorded {} ({:+.1} %)",
        shape_words(recorded.shape),
        format_duration(calibration.wall_ns),
        format_duration(recorded.wall_ns),
        relative_error(calibration.wall_ns, recorded.wall_ns) * 100.0,
    );
    let _ = writeln!(
        out,
        "{}: {} task attempts recorded on {}, {:.0} % of thread time busy",
        printable(name),
        calibration.attempts,
        shape_words(recorded.shape),
        recorded.utilisation * 100.0
    );
    let network = match model.network.bandwidth {
        Some(bw) => format!(
            "{} + {}/s per transfer",
            format_duration(model.network.latency_ns),
            format_bytes(bw)
        ),
        None => format!("{} per transfer", format_duration(model.network.latency_ns)),
    };
    // The slowest of a round of peers, where the recorded transfers spread.
    let round = model.gather_latency_ns(engine::CONCURRENT_GATHERS);
    let network = if round > model.network.latency_ns {
        format!(
            "{network} ({} from {} peers at once: the slowest)",
            format_duration(round),
            engine::CONCURRENT_GATHERS
        )
    } else {
        network
    };
    let _ = writeln!(
        out,
        "model: network {network}; {} dispatch overhead per task; {} scheduler round trip \
         before a dependent task{}",
        format_duration(model.dispatch_ns),
        format_duration(model.ready_latency_ns),
        match model.inline_bps {
            Some(bps) => format!("; inline arguments shipped at {}/s", format_bytes(bps)),
            None => String::new(),
        }
    );
    let _ = match replay.cpu_model(model) {
        Some(cpu) => writeln!(
            out,
            "cpu: tasks computing on one host share its {}; each wants {} of a core (its \
             group's recorded CPU time over compute time); the shape's workers stand on the \
             recorded hosts",
            cpu.cores_text(),
            cpu.shares_text(),
        ),
        None => writeln!(
            out,
            "cpu: not modelled (the trace has no CPU time per group, or no host's cores and \
             no --cores): tasks never slow each other down"
        ),
    };
    if !replay.has_dependencies {
        let _ = writeln!(
            out,
            "note: the trace has no dependencies (a task stream?): tasks replay as independent, \
             so predictions are optimistic"
        );
    }
    let error = relative_error(calibration.wall_ns, recorded.wall_ns);
    if error.abs() > whatif::CALIBRATION_BOUND {
        let _ = writeln!(
            out,
            "note: the replay of the recorded shape is {:.0} % {} than the run: something it does \
             not model mattered here (see the README's list), so read the other shapes' figures \
             as rough; `analyze` takes no simulated saving from a replay this far off",
            error.abs() * 100.0,
            if error < 0.0 { "shorter" } else { "longer" }
        );
    }
    let held: usize = replay.submissions.iter().map(|s| s.held.len()).sum();
    if held > 0 {
        let _ = writeln!(
            out,
            "note: {held} result{} the trace has no task for (scattered data) start where the \
             trace says they were held",
            if held == 1 { "" } else { "s" }
        );
    }
    if replay.unknown_dependencies > 0 {
        let _ = writeln!(
            out,
            "note: {} dependencies on results the trace has no task for (scattered data?) are \
             left out",
            replay.unknown_dependencies
        );
    }
    let fixes = listed.iter().any(|row| row.fixed.is_some());
    match fix {
        Some(fix) if fixes => {
            let _ = writeln!(out, "fix {}: {}", fix.rule(), fix.describe());
        }
        Some(fix) => {
            let _ = writeln!(
                out,
                "fix {}: nothing in this trace for it to change ({})",
                fix.rule(),
                fix.describe()
            );
        }
        None => {}
    }
    let _ = writeln!(out);
    let fixed_header = if fixes { "   with the fix" } else { "" };
    let _ = writeln!(
        out,
        "{:<10} {:>10} {:>12} {:>12} {:>12}{fixed_header}",
        "shape", "wall", "vs recorded", "utilisation", "transferred"
    );
    for row in listed {
        let p = row.prediction;
        let mark = if row.shape == recorded.shape {
            " (rec)"
        } else {
            ""
        };
        let fixed = row.fixed.map_or(String::new(), |f| {
            format!(
                " {:>10} ({:+.0} %)",
                format_duration(f.wall_ns),
                relative_error(f.wall_ns, p.wall_ns) * 100.0
            )
        });
        let _ = writeln!(
            out,
            "{:<10} {:>10} {:>11.2}× {:>11.0} % {:>12}{fixed}",
            format!("{}{mark}", row.shape),
            format_duration(p.wall_ns),
            p.wall_ns as f64 / calibration.wall_ns.max(1) as f64,
            p.utilisation * 100.0,
            format_bytes(p.transferred_bytes),
        );
    }
    let _ = writeln!(
        out,
        "\ncritical path (unlimited workers, free transfers): {}",
        format_duration(critical_path)
    );
    out
}

fn shape_words(shape: Shape) -> String {
    format!(
        "{} × {}",
        traces::units::counted(u64::from(shape.workers), "worker"),
        traces::units::counted(u64::from(shape.threads), "thread")
    )
}

fn seconds(ns: u64) -> f64 {
    ns as f64 / 1e9
}
