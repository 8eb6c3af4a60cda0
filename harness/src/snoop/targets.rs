//! Target files (`snoop --config FILE`): many functions of several libraries at once, in
//! FuncSnoop's JSON layout or the same layout in TOML.
//!
//! ```json
//! {
//!   "libraries": { "cuda_func_sym": "/usr/local/cuda/lib64/libcudart.so.12" },
//!   "cuda_func_sym": { "cudaMalloc": "cudaMalloc", "cudaFree": "cudaFree" },
//!   "libtorch_func_sym": { "linear_forward": "_ZN5torch2nn10LinearImpl7forwardERKN2at6TensorE" },
//!   "custom_sym": { "vectorAdd": "vectorAdd" }
//! }
//! ```
//! Each group other than `libraries` maps display names (shown in the report) to symbols (mangled
//! or demangled) of one library. FuncSnoop's files carry no paths (its program knew them), so the
//! library of a group is, in order: `libraries.<group>` in the file (a relative path with a `/`
//! starts at the file's directory), else a default for FuncSnoop's group names
//! ([`DEFAULT_LIBRARIES`]: a soname looked up like one given on the command line), else, for
//! `custom_sym`, the launched program (or the attached process's executable). The TOML form is the
//! same tables: `[libraries]`, `[cuda_func_sym]`, ...
//!
//! Errors name the file and the line (of the key, where the parser or a search finds it) and the
//! key: `targets.json:7: cuda_func_sym.cudaMalloc: ...`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::SnoopError;

/// The group that names each group's library.
pub const LIBRARIES_KEY: &str = "libraries";

/// The library of FuncSnoop's group names when the file names none: sonames, found through the
/// process's mappings or the loader's cache like any bare library name.
pub const DEFAULT_LIBRARIES: &[(&str, &str)] = &[
    ("cuda_func_sym", "libcudart.so"),
    ("cublas_func_sym", "libcublas.so"),
    ("cudnn_func_sym", "libcudnn.so"),
    ("nccl_func_sym", "libnccl.so"),
    ("libtorch_func_sym", "libtorch_cpu.so"),
];

/// The group whose functions are in the traced program itself when the file names no library.
pub const CUSTOM_GROUP: &str = "custom_sym";

/// One function from a target file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileTarget {
    /// The display name (the key in its group).
    pub name: String,
    /// `FILE:SYMBOL`, as on the command line.
    pub spec: String,
}

fn err(path: &Path, text: &str, key: &str, why: String) -> SnoopError {
    // The line of the key's last part as a quoted JSON key or a TOML key, else unknown (0).
    let last = key.rsplit('.').next().unwrap_or(key);
    let line = text
        .lines()
        .position(|l| {
            let t = l.trim_start();
            t.starts_with(&format!("\"{last}\""))
                || t.starts_with(&format!("{last} "))
                || t.starts_with(&format!("[{last}]"))
        })
        .map_or(0, |i| i + 1);
    SnoopError::TargetFile { path: path.to_path_buf(), line, key: key.to_owned(), why }
}

/// Reads a target file (`.toml` is TOML, anything else JSON). `program` is the traced program
/// (the `custom_sym` default), when known.
pub fn load(path: &Path, program: Option<&Path>) -> Result<Vec<FileTarget>, SnoopError> {
    let text = std::fs::read_to_string(path).map_err(|e| SnoopError::TargetFile {
        path: path.to_path_buf(),
        line: 0,
        key: String::new(),
        why: e.to_string(),
    })?;
    let groups: BTreeMap<String, BTreeMap<String, String>> = if path.extension().is_some_and(|e| e == "toml") {
        toml::from_str(&text).map_err(|e| SnoopError::TargetFile {
            path: path.to_path_buf(),
            line: e.span().map_or(0, |s| text[..s.start.min(text.len())].matches('\n').count() + 1),
            key: String::new(),
            why: format!("{} (expected tables of \"display name\" = \"symbol\")", e.message().trim()),
        })?
    } else {
        serde_json::from_str(&text).map_err(|e| SnoopError::TargetFile {
            path: path.to_path_buf(),
            line: e.line(),
            key: String::new(),
            why: format!("{e} (expected {{\"group\": {{\"display name\": \"symbol\"}}}})"),
        })?
    };
    parse(&groups, path, &text, program)
}

fn parse(
    groups: &BTreeMap<String, BTreeMap<String, String>>,
    path: &Path,
    text: &str,
    program: Option<&Path>,
) -> Result<Vec<FileTarget>, SnoopError> {
    let libraries = groups.get(LIBRARIES_KEY).cloned().unwrap_or_default();
    for g in libraries.keys() {
        if !groups.contains_key(g) {
            return Err(err(
                path,
                text,
                &format!("{LIBRARIES_KEY}.{g}"),
                format!("names a library for group {g:?}, which the file does not have"),
            ));
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for (group, funcs) in groups.iter().filter(|(g, _)| g.as_str() != LIBRARIES_KEY) {
        let library: PathBuf = match libraries.get(group) {
            Some(l) if l.contains('/') && Path::new(l).is_relative() => dir.join(l),
            Some(l) => PathBuf::from(l),
            None => match (DEFAULT_LIBRARIES.iter().find(|(g, _)| g == group), program) {
                (Some((_, lib)), _) => PathBuf::from(lib),
                (None, Some(p)) if group == CUSTOM_GROUP => p.to_path_buf(),
                _ => {
                    return Err(err(
                        path,
                        text,
                        group,
                        format!(
                        "no library for this group: add \"{LIBRARIES_KEY}\": {{\"{group}\": \"/path/or/soname\"}} to \
                             the file"
                    ),
                    ))
                }
            },
        };
        if funcs.is_empty() {
            return Err(err(path, text, group, "the group has no functions".into()));
        }
        for (name, symbol) in funcs {
            if symbol.is_empty() || name.is_empty() {
                return Err(err(path, text, &format!("{group}.{name}"), "an empty display name or symbol".into()));
            }
            out.push(FileTarget { name: name.clone(), spec: format!("{}:{symbol}", library.display()) });
        }
    }
    if out.is_empty() {
        return Err(err(path, text, "", "no functions: expected {\"group\": {\"display name\": \"symbol\"}}".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, body: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(name);
        std::fs::write(&p, body).unwrap();
        (d, p)
    }

    #[test]
    fn funcsnoop_json_with_library_paths_and_defaults() {
        let (_d, p) = write(
            "t.json",
            r#"{
  "libraries": { "custom_sym": "bin/app" },
  "cuda_func_sym": { "cudaMalloc": "cudaMalloc" },
  "libtorch_func_sym": { "linear_forward": "_ZN5torch2nn10LinearImpl7forwardERKN2at6TensorE" },
  "custom_sym": { "vectorAdd": "vectorAdd" }
}"#,
        );
        let t = load(&p, None).unwrap();
        let dir = p.parent().unwrap();
        assert_eq!(
            t,
            vec![
                FileTarget { name: "cudaMalloc".into(), spec: "libcudart.so:cudaMalloc".into() },
                FileTarget { name: "vectorAdd".into(), spec: format!("{}:vectorAdd", dir.join("bin/app").display()) },
                FileTarget {
                    name: "linear_forward".into(),
                    spec: "libtorch_cpu.so:_ZN5torch2nn10LinearImpl7forwardERKN2at6TensorE".into()
                },
            ]
        );
    }

    #[test]
    fn toml_is_the_same_layout_and_custom_defaults_to_the_program() {
        let (_d, p) = write(
            "t.toml",
            "[custom_sym]\nwork = \"my::work\"\n[libc]\nalloc = \"malloc\"\n[libraries]\nlibc = \"libc.so.6\"\n",
        );
        let t = load(&p, Some(Path::new("/bin/prog"))).unwrap();
        assert_eq!(t[0], FileTarget { name: "work".into(), spec: "/bin/prog:my::work".into() });
        assert_eq!(t[1], FileTarget { name: "alloc".into(), spec: "libc.so.6:malloc".into() });
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let (_d, p) = write("t.json", "{\n  \"mine\": {\n    \"f\": \"f\"\n  }\n}\n");
        let e = load(&p, None).unwrap_err().to_string();
        assert!(e.contains("t.json:2: mine: no library for this group"), "{e}");
        let (_d, p) = write("t.json", "{\n  \"cuda_func_sym\": {\n    \"f\": 3\n  }\n}\n");
        let e = load(&p, None).unwrap_err().to_string();
        assert!(e.contains("t.json:3:"), "{e}");
        let (_d, p) = write("t.toml", "[libraries]\nnope = \"x.so\"\n[custom_sym]\nf = \"f\"\n");
        let e = load(&p, Some(Path::new("/p"))).unwrap_err().to_string();
        assert!(e.contains("t.toml:2: libraries.nope: names a library for group \"nope\""), "{e}");
        let (_d, p) = write("t.toml", "[custom_sym]\nf = [1]\n");
        let e = load(&p, None).unwrap_err().to_string();
        assert!(e.contains("t.toml:2:"), "{e}");
        let e = load(Path::new("/no/such/targets.json"), None).unwrap_err().to_string();
        assert!(e.contains("/no/such/targets.json"), "{e}");
    }
}
