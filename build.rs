//! Test-suite switches: when `CALLOPS_TEST_POSTGRES_URL` / `CALLOPS_TEST_AMQP_URL` are not
//! set (and `CI` is not true), the suites that need those services are compiled as
//! `#[ignore]`d, so the test runner reports them as skipped instead of passing without
//! running. Under `CI=true` they are never ignored: a missing URL makes them fail
//! (tests/common/mod.rs).

fn set(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.trim().is_empty())
}

fn main() {
    // Not `CI`: a fresh CI checkout runs this script anyway, and declaring it would
    // recompile the crate whenever someone alternates between `.ci/run` (CI=true) and a
    // plain local run with the same URLs.
    for var in [
        "CALLOPS_TEST_POSTGRES_URL",
        "CALLOPS_TEST_AMQP_URL",
        "CALLOPS_TEST_MYSQL_URL",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rustc-check-cfg=cfg(callops_no_postgres)");
    println!("cargo::rustc-check-cfg=cfg(callops_no_rabbitmq)");
    println!("cargo::rustc-check-cfg=cfg(callops_no_mysql)");
    let ci = std::env::var("CI").is_ok_and(|v| matches!(v.trim(), "true" | "1" | "yes"));
    if !ci && !set("CALLOPS_TEST_POSTGRES_URL") {
        println!("cargo::rustc-cfg=callops_no_postgres");
    }
    if !ci && !set("CALLOPS_TEST_AMQP_URL") {
        println!("cargo::rustc-cfg=callops_no_rabbitmq");
    }
    if !ci && !set("CALLOPS_TEST_MYSQL_URL") {
        println!("cargo::rustc-cfg=callops_no_mysql");
    }
}
