fn main() {
    std::process::exit(keepwell::cli::main());
}
