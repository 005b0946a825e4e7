//! A generated table kept in the README between two markers: a test regenerates it and fails
//! when the README's copy is stale (`TASKSCOPE_UPDATE_README=1` rewrites it instead).

use std::path::Path;

/// Checks (or with `TASKSCOPE_UPDATE_README` set, writes) `table` between `begin` and `end`.
pub fn check_block(readme_path: &Path, begin: &str, end: &str, table: &str) {
    let readme = std::fs::read_to_string(readme_path).unwrap();
    let (before, rest) = readme
        .split_once(begin)
        .unwrap_or_else(|| panic!("README: no {begin:?} marker"));
    let (_, after) = rest
        .split_once(end)
        .unwrap_or_else(|| panic!("README: no {end:?} marker"));
    let current = format!("{before}{begin}{table}{end}{after}");
    if std::env::var_os("TASKSCOPE_UPDATE_README").is_some() {
        std::fs::write(readme_path, current).unwrap();
    } else {
        assert!(
            readme == current,
            "the README's table after {begin:?} is stale: rerun with TASKSCOPE_UPDATE_README=1\n{table}"
        );
    }
}

/// Prints `table` and keeps it current in the root README (as [`check_block`]), then fails on
/// any `wrong` row: the README is rewritten first, so it already shows what failed.
#[allow(dead_code)] // the analyzer's corpus test includes this file for `check_block` alone
pub fn check_root_table(begin: &str, end: &str, table: &str, wrong: &[String]) {
    println!("{table}");
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    check_block(&readme, begin, end, table);
    assert!(wrong.is_empty(), "{wrong:#?}");
}
