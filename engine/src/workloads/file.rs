//! User-described graphs: a TOML or JSON file of task groups (counts, durations, sizes,
//! dependency patterns) and individual tasks, run like a built-in workload.
//!
//! ```toml
//! [[group]]
//! name = "read-parquet"
//! count = 16
//! duration = "50ms"
//! output = "8MiB"
//!
//! [[group]]
//! name = "process"
//! count = 16
//! duration = "30ms"
//! output = "1MiB"
//! skew = { index = 3, factor = 20 }     # task 3 takes 20x longer and is 20x bigger
//! deps = [{ group = "read-parquet", pattern = "one-to-one" }]
//!
//! [[group]]
//! name = "total"
//! deps = [{ group = "process", pattern = "all" }]
//!
//! [[task]]                              # single tasks, by key
//! key = "report"
//! duration = "5ms"
//! deps = ["total-0"]
//! ```
//!
//! Patterns: `one-to-one` (task i reads task i), `all` (every task reads every task: fan-in,
//! or all-to-all), `blocks` (task i reads its contiguous share: a tree level), `fan-out` (task i
//! reads task i × n_dep / n: each input feeds several tasks).

use std::collections::HashMap;
use std::path::Path;

use bytes::Bytes;
use serde::Deserialize;
use traces::Key;

use crate::graph::{Graph, GraphBuilder, TaskRef, Work};

use super::{KeyFamily, MS};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GraphFile {
    #[serde(default)]
    group: Vec<GroupSpec>,
    #[serde(default)]
    task: Vec<TaskEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    name: String,
    #[serde(default = "one")]
    count: u64,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    output: Option<String>,
    /// Size of an argument embedded in each task (what `scatter` would avoid).
    #[serde(default)]
    argument: Option<String>,
    /// Working memory while the task runs.
    #[serde(default)]
    working: Option<String>,
    #[serde(default)]
    skew: Option<Skew>,
    #[serde(default)]
    deps: Vec<GroupDep>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Skew {
    index: u64,
    factor: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupDep {
    group: String,
    #[serde(default)]
    pattern: Pattern,
}

#[derive(Debug, Default, Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum Pattern {
    #[default]
    OneToOne,
    All,
    Blocks,
    FanOut,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskEntry {
    key: String,
    #[serde(default)]
    duration: Option<String>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    argument: Option<String>,
    #[serde(default)]
    working: Option<String>,
    #[serde(default)]
    deps: Vec<String>,
}

impl Pattern {
    fn name(self) -> &'static str {
        match self {
            Pattern::OneToOne => "one-to-one",
            Pattern::All => "all",
            Pattern::Blocks => "blocks",
            Pattern::FanOut => "fan-out",
        }
    }
}

fn one() -> u64 {
    1
}

/// The most tasks a graph file may describe: what the engine holds in a laptop's memory (the
/// largest built-in workload at the largest `--scale` has 5 million). A typo such as
/// `count = 1e12` is an error, not an abort on allocation.
const MAX_TASKS: u64 = 5_000_000;

/// Reads a graph file (`.toml` or `.json`); errors name the file and the field.
pub fn load(path: &Path) -> Result<Graph, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
    let file: GraphFile = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => toml::from_str(&text).map_err(|e| {
            let message = e.message().to_string();
            let line = e
                .span()
                .map(|span| text[..span.start].matches('\n').count() + 1);
            match line {
                Some(line) => format!("{name}:{line}: {message}"),
                None => format!("{name}: {message}"),
            }
        })?,
        Some("json") => {
            serde_json::from_str(&text).map_err(|e| format!("{name}:{}: {e}", e.line()))?
        }
        _ => return Err(format!("{name}: expected a .toml or .json graph file")),
    };
    build(&file).map_err(|e| format!("{name}: {e}"))
}

/// Parses a size field (`8MiB`); `what` names it in errors.
fn size(value: &Option<String>, what: &str) -> Result<u64, String> {
    match value {
        None => Ok(0),
        Some(text) => traces::units::parse_bytes(text).map_err(|e| format!("{what}: {e}")),
    }
}

fn duration(value: &Option<String>, what: &str) -> Result<u64, String> {
    match value {
        None => Ok(MS),
        Some(text) => {
            let d = humantime::parse_duration(text)
                .map_err(|e| format!("{what}: invalid duration {text:?}: {e}"))?;
            u64::try_from(d.as_nanos())
                .map_err(|_| format!("{what}: invalid duration {text:?}: longer than 584 years"))
        }
    }
}

fn work(
    what: &str,
    duration_field: &Option<String>,
    output: &Option<String>,
    argument: &Option<String>,
    working: &Option<String>,
    factor: u64,
) -> Result<Work, String> {
    // The skew factor multiplies both; a product past u64 would wrap to a short, small task.
    let scaled = |value: u64, field: &str| {
        value.checked_mul(factor).ok_or_else(|| {
            format!("{what}.{field}: {value} times skew factor {factor} is too large")
        })
    };
    let mut work = Work::new(
        scaled(
            duration(duration_field, &format!("{what}.duration"))?,
            "duration",
        )?,
        scaled(size(output, &format!("{what}.output"))?, "output")?,
    );
    let argument = size(argument, &format!("{what}.argument"))?;
    if argument > 0 {
        work = work.inline(Bytes::from(vec![7u8; argument as usize]));
    }
    let working = size(working, &format!("{what}.working"))?;
    if working > 0 {
        work = work.working_bytes(working);
    }
    Ok(work)
}

fn build(file: &GraphFile) -> Result<Graph, String> {
    if file.group.is_empty() && file.task.is_empty() {
        return Err("no [[group]] or [[task]] entries".to_string());
    }
    let mut graph = GraphBuilder::new();
    let mut groups: HashMap<&str, Vec<TaskRef>> = HashMap::new();
    let mut by_key: HashMap<String, TaskRef> = HashMap::new();
    let mut total: u64 = file.task.len() as u64;
    for (g, spec) in file.group.iter().enumerate() {
        if groups.contains_key(spec.name.as_str()) {
            return Err(format!("group \"{}\" is defined twice", spec.name));
        }
        let what = format!("group[{g}] ({})", spec.name);
        total = total.saturating_add(spec.count);
        if total > MAX_TASKS {
            return Err(format!(
                "{what}.count: {} makes the graph more than {MAX_TASKS} tasks",
                spec.count
            ));
        }
        if let Some(skew) = &spec.skew
            && skew.index >= spec.count
        {
            return Err(format!(
                "{what}.skew.index: {} is not below count {}",
                skew.index, spec.count
            ));
        }
        let family = KeyFamily::new(&spec.name);
        let mut tasks = Vec::with_capacity(spec.count as usize);
        for i in 0..spec.count {
            let factor = match &spec.skew {
                Some(skew) if skew.index == i => skew.factor.max(1),
                _ => 1,
            };
            let work = work(
                &what,
                &spec.duration,
                &spec.output,
                &spec.argument,
                &spec.working,
                factor,
            )?;
            let key = family.key(i);
            let task = graph.add(key, work);
            by_key.insert(format!("{}-{i}", spec.name), task);
            tasks.push(task);
        }
        for dep in &spec.deps {
            let Some(inputs) = groups.get(dep.group.as_str()) else {
                return Err(format!(
                    "{what}.deps: unknown group \"{}\" (groups must be defined before use)",
                    dep.group
                ));
            };
            if inputs.is_empty()
                && !tasks.is_empty()
                && matches!(dep.pattern, Pattern::OneToOne | Pattern::FanOut)
            {
                return Err(format!(
                    "{what}.deps: group \"{}\" has no tasks (count = 0) to feed {}",
                    dep.group,
                    dep.pattern.name()
                ));
            }
            connect(&mut graph, &tasks, inputs, dep.pattern);
        }
        groups.insert(spec.name.as_str(), tasks);
    }
    for (t, entry) in file.task.iter().enumerate() {
        let what = format!("task[{t}] ({})", entry.key);
        let work = work(
            &what,
            &entry.duration,
            &entry.output,
            &entry.argument,
            &entry.working,
            1,
        )?;
        let mut deps = Vec::with_capacity(entry.deps.len());
        for dep in &entry.deps {
            match by_key.get(dep) {
                Some(&d) => deps.push(d),
                None => {
                    return Err(format!(
                        "{what}.deps: unknown key \"{dep}\" (a [[task]] key or GROUP-INDEX, defined above)"
                    ));
                }
            }
        }
        let task = graph.add_with_deps(Key::from(entry.key.as_str()), work, &deps);
        if by_key.insert(entry.key.clone(), task).is_some() {
            return Err(format!("{what}: key \"{}\" is defined twice", entry.key));
        }
    }
    graph.build().map_err(|e| e.to_string())
}

fn connect(graph: &mut GraphBuilder, tasks: &[TaskRef], inputs: &[TaskRef], pattern: Pattern) {
    let (n, m) = (tasks.len(), inputs.len());
    for (i, &task) in tasks.iter().enumerate() {
        match pattern {
            Pattern::OneToOne => graph.depend(task, inputs[i % m]),
            Pattern::All => {
                for &input in inputs {
                    graph.depend(task, input);
                }
            }
            Pattern::Blocks => {
                let (from, to) = (i * m / n, ((i + 1) * m / n).max(i * m / n + 1));
                for &input in &inputs[from..to.min(m)] {
                    graph.depend(task, input);
                }
            }
            Pattern::FanOut => graph.depend(task, inputs[(i * m / n).min(m - 1)]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(name: &str, text: &str) -> Result<Graph, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        load(&path).map_err(|e| e.replace(&dir.path().display().to_string(), "DIR"))
    }

    #[test]
    fn groups_patterns_and_tasks() {
        let graph = load_str(
            "g.toml",
            r#"
[[group]]
name = "read"
count = 8
duration = "2ms"
output = "1MiB"

[[group]]
name = "process"
count = 8
skew = { index = 3, factor = 20 }
deps = [{ group = "read" }]

[[group]]
name = "combine"
count = 2
deps = [{ group = "process", pattern = "blocks" }]

[[task]]
key = "report"
deps = ["combine-0", "combine-1"]
"#,
        )
        .unwrap();
        assert_eq!(graph.len(), 19);
        let skewed = graph.task(8 + 3);
        assert_eq!(skewed.work.compute_ns, 20 * MS);
        assert_eq!(graph.dependencies(16).count(), 4);
        assert_eq!(graph.sinks().collect::<Vec<_>>(), [18]);
        assert_eq!(graph.task(18).key, Key::from("report"));
    }

    #[test]
    fn json_works_too() {
        let graph = load_str(
            "g.json",
            r#"{"group": [{"name": "a", "count": 3}, {"name": "b", "deps": [{"group": "a", "pattern": "all"}]}]}"#,
        )
        .unwrap();
        assert_eq!(graph.dependencies(3).count(), 3);
    }

    #[test]
    fn errors_name_the_file_and_field() {
        assert_eq!(
            load_str("g.toml", "[[group]]\nname = \"a\"\noutput = \"lots\"\n").unwrap_err(),
            "DIR/g.toml: group[0] (a).output: invalid size \"lots\": expected a number with an \
             optional unit (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GiB"
        );
        assert_eq!(
            load_str(
                "g.toml",
                "[[group]]\nname = \"b\"\ndeps = [{ group = \"a\" }]\n"
            )
            .unwrap_err(),
            "DIR/g.toml: group[0] (b).deps: unknown group \"a\" (groups must be defined before use)"
        );
        assert_eq!(
            load_str("g.toml", "[[group]]\nname = \"a\"\ncuont = 3\n").unwrap_err(),
            "DIR/g.toml:3: unknown field `cuont`, expected one of `name`, `count`, `duration`, \
             `output`, `argument`, `working`, `skew`, `deps`"
        );
        assert_eq!(
            load_str("g.json", "{\"group\": [}").unwrap_err(),
            "DIR/g.json:1: expected value at line 1 column 12"
        );
        assert_eq!(
            load_str("g.yaml", "").unwrap_err(),
            "DIR/g.yaml: expected a .toml or .json graph file"
        );
    }
}
