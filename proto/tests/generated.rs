//! The generated code is committed (so building needs no code generator); this checks that it
//! is what the schema gives today. Regenerate with
//! `TASKSCOPE_REGENERATE=1 cargo test -p taskscope-proto --test generated`.

use std::path::Path;

#[test]
fn generated_code_matches_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fds = protox::compile([root.join("proto/observe.proto")], [root.join("proto")])
        .expect("the schema compiles");
    let out = tempfile::tempdir().unwrap();
    tonic_prost_build::configure()
        .out_dir(out.path())
        .compile_fds(fds)
        .expect("code generation");
    let name = "taskscope.observe.v1.rs";
    let fresh = std::fs::read_to_string(out.path().join(name)).unwrap();
    let committed_path = root.join("src/generated").join(name);
    if std::env::var_os("TASKSCOPE_REGENERATE").is_some() {
        std::fs::write(&committed_path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: regenerate it with TASKSCOPE_REGENERATE=1 cargo test -p taskscope-proto --test generated",
        committed_path.display()
    );
}
