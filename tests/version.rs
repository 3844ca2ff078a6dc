//! One version everywhere: Cargo.toml's, the header's POOL_VERSION macros (which
//! build.rs derives from it) and pool_version() must agree, so that a C program's
//! compile-time check (POOL_VERSION_NUM) means what its run-time check does.

use std::ffi::CStr;

const CARGO_TOML: &str = include_str!("../Cargo.toml");
const HEADER: &str = include_str!("../include/md5pool.h");

/// The `version = "..."` of Cargo.toml's [package] section.
fn cargo_toml_version() -> &'static str {
    let package = CARGO_TOML
        .split("\n[")
        .find(|section| section.starts_with("[package]") || section.starts_with("package]"))
        .expect("Cargo.toml has a [package] section");
    package
        .lines()
        .find_map(|line| line.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("[package] has a version")
}

/// The value of `#define name value` in the header.
fn header_macro(name: &str) -> &'static str {
    let prefix = format!("#define {name} ");
    HEADER
        .lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .unwrap_or_else(|| panic!("include/md5pool.h does not define {name}"))
        .trim()
}

fn header_number(name: &str) -> u32 {
    let value = header_macro(name);
    let parsed = match value.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => value.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("{name} is not a number: {value}"))
}

#[test]
fn cargo_toml_header_and_library_agree() {
    let cargo = cargo_toml_version();
    // SAFETY: pool_version returns a static NUL-terminated string.
    let library = unsafe { CStr::from_ptr(md5pool::ffi::pool_version()) };
    assert_eq!(library.to_str(), Ok(cargo), "pool_version()");
    assert_eq!(md5pool::VERSION, cargo);
    assert_eq!(header_macro("POOL_VERSION"), format!("\"{cargo}\""));

    let numbers: Vec<u32> = cargo
        .split(['.', '-', '+'])
        .take(3)
        .map(|part| part.parse().expect("a numeric major.minor.patch"))
        .collect();
    let [major, minor, patch] = numbers[..] else {
        panic!("Cargo.toml's version is not major.minor.patch: {cargo}");
    };
    assert_eq!(header_number("POOL_VERSION_MAJOR"), major);
    assert_eq!(header_number("POOL_VERSION_MINOR"), minor);
    assert_eq!(header_number("POOL_VERSION_PATCH"), patch);
    assert_eq!(
        header_number("POOL_VERSION_NUM"),
        major << 16 | minor << 8 | patch
    );
    assert!(
        HEADER.contains(&format!("md5pool C API, version {major}.{minor}.")),
        "the header's banner names another API version than {major}.{minor}"
    );
}
