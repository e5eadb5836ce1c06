//! What a dynamically linked binary needs beside it in an empty (`scratch`) image: the shared
//! libraries and the loader `ldd` reports, at the paths the loader looks for them.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// `(path in the image, file on this machine)` for each library `binary` links, loader included.
/// A static binary needs none.
pub fn linked_libraries(binary: &Path) -> Result<Vec<(String, PathBuf)>> {
    let fail = |why: String| Error::Libraries {
        binary: binary.display().to_string(),
        why,
    };
    let out = Command::new("ldd").arg(binary).output().map_err(|e| {
        fail(format!(
            "ldd: {e} (install libc-bin, or build mlship statically)"
        ))
    })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    if text.contains("not a dynamic executable")
        || text.contains("statically linked")
        || err.contains("not a dynamic executable")
    {
        return Ok(Vec::new());
    }
    if !out.status.success() {
        return Err(fail(format!("ldd failed: {}", err.trim())));
    }
    parse_ldd(&text).map_err(fail)
}

fn parse_ldd(text: &str) -> std::result::Result<Vec<(String, PathBuf)>, String> {
    let mut libs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)`, `/lib64/ld-linux-x86-64.so.2 (0x…)`,
        // `linux-vdso.so.1 (0x…)` (in the kernel, nothing to copy).
        let target = match line.split_once("=>") {
            Some((name, rest)) => {
                let rest = rest.trim();
                if rest.starts_with("not found") {
                    return Err(format!("{} is not found on this machine", name.trim()));
                }
                rest.split_whitespace().next().unwrap_or("")
            }
            None => line.split_whitespace().next().unwrap_or(""),
        };
        if target.starts_with('/') {
            libs.push((target.to_string(), PathBuf::from(target)));
        }
    }
    libs.sort();
    libs.dedup();
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ldd_output() {
        let text = "\tlinux-vdso.so.1 (0x00007ffd)\n\tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x7f)\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x7f)\n\t/lib64/ld-linux-x86-64.so.2 (0x7f)\n";
        let libs = parse_ldd(text).unwrap();
        let paths: Vec<&str> = libs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/lib/x86_64-linux-gnu/libc.so.6",
                "/lib/x86_64-linux-gnu/libgcc_s.so.1",
                "/lib64/ld-linux-x86-64.so.2"
            ]
        );
        assert!(parse_ldd("\tlibfoo.so => not found\n").is_err());
    }

    #[test]
    fn this_test_binary_links_a_libc() {
        let me = std::env::current_exe().unwrap();
        let libs = linked_libraries(&me).unwrap();
        assert!(libs.iter().any(|(p, _)| p.contains("libc.so")), "{libs:?}");
    }
}
