fn main() -> std::process::ExitCode {
    callops::cli::main()
}
