//! Lets the binary, tests and benches find the prebuilt libduckdb without `LD_LIBRARY_PATH`.
fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if std::env::var_os("CARGO_FEATURE_BUNDLED").is_some() {
        return;
    }
    if let Some(dir) = std::env::var_os("DUCKDB_LIB_DIR") {
        let dir = std::path::Path::new(&dir);
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}
