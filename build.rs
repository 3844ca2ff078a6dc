//! Generates include/md5pool.h with cbindgen (rewritten only when its content
//! changes), and links the cdylib with a soname and a version script that keeps
//! every symbol but the `pool_` API out of the .so.

use std::env;
use std::fs;
use std::path::PathBuf;

const SONAME: &str = "libmd5pool.so.1";

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-changed=src/ffi.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=Cargo.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let version_script = out_dir.join("md5pool.map");
    fs::write(&version_script, "{\n  global: pool_*;\n  local: *;\n};\n").unwrap();
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,--version-script={}",
        version_script.display()
    );
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{SONAME}");

    let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let version = Version::of_this_crate();
    config.header = config
        .header
        .map(|banner| banner.replace("@API_VERSION@", &version.api()));
    config.after_includes = Some(version.c_macros());
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_src(crate_dir.join("src/ffi.rs"))
        .with_config(config)
        .generate()
        .expect("cbindgen could not generate include/md5pool.h")
        .write(&mut generated);
    let header = with_sized_calls(&make_c89_clean(&String::from_utf8(generated).unwrap()));
    let path = crate_dir.join("include/md5pool.h");
    if fs::read_to_string(&path).ok().as_deref() != Some(header.as_str()) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, header).unwrap();
    }
}

/// The crate's version from Cargo.toml: the header's version macros come from it,
/// so that they can never disagree with pool_version() (which is the same string).
struct Version {
    major: u32,
    minor: u32,
    patch: u32,
    /// All of it, pre-release part included: what pool_version() returns.
    text: String,
}

impl Version {
    fn of_this_crate() -> Version {
        let part = |name: &str| -> u32 {
            let value = env::var(name).unwrap();
            let number = value.parse().unwrap();
            assert!(
                number <= 0xff,
                "{name} = {number} does not fit POOL_VERSION_NUM"
            );
            number
        };
        Version {
            major: part("CARGO_PKG_VERSION_MAJOR"),
            minor: part("CARGO_PKG_VERSION_MINOR"),
            patch: part("CARGO_PKG_VERSION_PATCH"),
            text: env::var("CARGO_PKG_VERSION").unwrap(),
        }
    }

    /// The API version the banner names: a patch release changes no promise.
    fn api(&self) -> String {
        format!("{}.{}", self.major, self.minor)
    }

    fn c_macros(&self) -> String {
        let Version {
            major,
            minor,
            patch,
            text,
        } = self;
        format!(
            "
/**
 * The version of this header (from Cargo.toml), for compile-time checks:
 * POOL_VERSION_NUM is 0xMMmmpp (major, minor, patch), like LIBCURL_VERSION_NUM, so
 * `#if POOL_VERSION_NUM >= 0x010100` asks for 1.1.0 or later. pool_version() gives the
 * version of the library loaded at run time (the same string when they match).
 */
#define POOL_VERSION_MAJOR {major}
#define POOL_VERSION_MINOR {minor}
#define POOL_VERSION_PATCH {patch}
#define POOL_VERSION_NUM 0x{major:02x}{minor:02x}{patch:02x}
#define POOL_VERSION \"{text}\""
        )
    }
}

/// The calls that fill a struct, compiled against this header, pass the size of
/// the struct as declared here (see pool_config_init in src/ffi.rs). After the
/// prototypes and inside the include guard (cbindgen's `trailer` lands after it).
/// `sizeof(type)`, not `sizeof *(ptr)`: a literal NULL argument stays valid.
const SIZED_CALLS: &str = "/*
 * Calls compiled against this header pass the size of the struct declared above:
 * the library, whatever its 1.x version, writes no further than that. A
 * function-like macro only replaces a call: &pool_config_init, or
 * (pool_config_init)(cfg), is the function itself, which writes the 1.0 layout.
 */
#define pool_config_init(cfg) pool_config_init_sized((cfg), sizeof(pool_config))
#define pool_stats_get(p, out) pool_stats_get_sized((p), (out), sizeof(pool_stats))
";

fn with_sized_calls(header: &str) -> String {
    let guard_end = header
        .rfind("#endif")
        .expect("cbindgen ends the header with its include guard");
    format!(
        "{}{SIZED_CALLS}\n{}",
        &header[..guard_end],
        &header[guard_end..]
    )
}

/// cbindgen writes a comma after the last enumerator and `// comments` after
/// `#endif`, both rejected by C89 and C++98 -pedantic (gcc 4.8's world).
fn make_c89_clean(header: &str) -> String {
    let lines: Vec<&str> = header.lines().collect();
    let mut out = String::with_capacity(header.len());
    for (i, line) in lines.iter().enumerate() {
        let next_closes = lines
            .get(i + 1)
            .is_some_and(|next| next.trim_start().starts_with('}'));
        let mut line = if next_closes {
            line.trim_end().trim_end_matches(',').to_string()
        } else {
            line.to_string()
        };
        let trimmed = line.trim_start();
        if trimmed.starts_with("#endif") || trimmed.starts_with("#else") || trimmed.starts_with('}')
        {
            if let Some(at) = line.find("//") {
                let comment = line[at + 2..].trim().to_string();
                line = format!("{} /* {} */", line[..at].trim_end(), comment);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}
