//! `mlship data` against the real `dvc` (3.67, from PyPI), both ways, on a folder remote and on
//! S3 (moto): what mlship writes is byte for byte what `dvc add` writes, `dvc status`, `pull` and
//! `checkout` accept it; what `dvc` pushes, mlship pulls to the same bytes. The workspace has
//! spaces and non-ASCII in names, empty files, nested folders, an executable and a symlink. Then
//! bad input: paths outside the repository, corrupted objects, unreadable `.dvc` files, an
//! unreachable remote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

use common::{dvc, dvc_exe, stdout_ok as ok};

/// `mlship data ARGS` in `dir`.
fn mlship(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["data"];
    all.extend(args);
    common::mlship_in(dir, &all, &[])
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .args(["-c", "user.email=t@example.com", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A workspace with the awkward cases: spaces, non-ASCII, empty files, nesting, an executable,
/// a symlink inside a tracked folder.
fn workspace(root: &Path) {
    let d = root.join("data/images");
    std::fs::create_dir_all(d.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(d.join("é dir")).unwrap();
    std::fs::write(root.join("data/train.csv"), "a,b\r\n1,2\r\n").unwrap();
    std::fs::write(d.join("a.txt"), "hello\n").unwrap();
    std::fs::write(d.join("with space.txt"), "x").unwrap();
    std::fs::write(d.join("empty"), "").unwrap();
    std::fs::write(d.join("sub/deeper/c.bin"), [0u8, 1, 2, 255]).unwrap();
    std::fs::write(d.join("é dir/f.txt"), "é\n").unwrap();
    std::fs::write(d.join("a-b.txt"), "ordering").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("a.txt", d.join("link.txt")).unwrap();
    std::fs::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(root.join("run.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
}

const TRACKED: [&str; 3] = ["data/train.csv", "data/images", "run.sh"];

fn repo(root: &Path) {
    std::fs::create_dir_all(root).unwrap();
    git(root, &["init", "-q"]);
}

/// Every file under `root` (following links) with its bytes, `.git` and `.dvc` left out.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().to_string();
            if name == ".git" || name == ".dvc" {
                continue;
            }
            let r = rel.join(&name);
            if std::fs::metadata(e.path()).unwrap().is_dir() {
                stack.push(r);
            } else {
                out.push((r.display().to_string(), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

fn data_of(root: &Path) -> Vec<(String, Vec<u8>)> {
    tree(root)
        .into_iter()
        .filter(|(p, _)| {
            TRACKED
                .iter()
                .any(|t| p == t || p.starts_with(&format!("{t}/")))
        })
        .collect()
}

fn exec_bit(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o100 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = p;
        true
    }
}

/// Cache listing: relative path and mode of every object.
fn cache_listing(root: &Path) -> Vec<String> {
    let base = root.join(".dvc/cache/files/md5");
    let mut v = Vec::new();
    for d in std::fs::read_dir(&base).unwrap() {
        let d = d.unwrap();
        for f in std::fs::read_dir(d.path()).unwrap() {
            let f = f.unwrap();
            #[cfg(unix)]
            let mode = {
                use std::os::unix::fs::PermissionsExt;
                f.metadata().unwrap().permissions().mode() & 0o777
            };
            #[cfg(not(unix))]
            let mode = 0;
            v.push(format!(
                "{}/{} {mode:o}",
                d.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            ));
        }
    }
    v.sort();
    v
}

/// A remote URL and the settings for it: a folder, or a fresh prefix of the test bucket.
enum Remote {
    Folder(PathBuf),
    S3(String),
}

fn s3_remote(tag: &str) -> Option<Remote> {
    match std::env::var("MLSHIP_TEST_S3") {
        Ok(b) => Some(Remote::S3(format!("{b}/data-{tag}-{}", std::process::id()))),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "MLSHIP_TEST_S3 must be set in CI (.ci/s3.sh)"
            );
            None
        }
    }
}

/// Adds the remote as default with mlship (S3: the endpoint in config, the keys in config.local,
/// as a team would keep them).
fn add_remote(root: &Path, r: &Remote) {
    match r {
        Remote::Folder(p) => {
            ok(mlship(
                root,
                &["remote", "add", "-d", "store", p.to_str().unwrap()],
            ));
        }
        Remote::S3(url) => {
            ok(mlship(root, &["remote", "add", "-d", "store", url]));
            let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
            ok(mlship(
                root,
                &["remote", "modify", "store", "endpointurl", &endpoint],
            ));
            for (k, v) in [
                ("access_key_id", "AWS_ACCESS_KEY_ID"),
                ("secret_access_key", "AWS_SECRET_ACCESS_KEY"),
            ] {
                ok(mlship(
                    root,
                    &[
                        "remote",
                        "modify",
                        "--local",
                        "store",
                        k,
                        &std::env::var(v).unwrap(),
                    ],
                ));
            }
        }
    }
}

/// A git repository holding the workspace, its data tracked by mlship.
fn tracked_by_mlship(a: &Path) {
    repo(a);
    workspace(a);
    ok(mlship(a, &["init"]));
    let mut args = vec!["add"];
    args.extend(TRACKED);
    ok(mlship(a, &args));
}

fn mlship_then_dvc(exe: &str, remote: Remote) {
    let t = tempfile::tempdir().unwrap();
    let (a, twin, b) = (
        t.path().join("a"),
        t.path().join("twin"),
        t.path().join("b"),
    );
    tracked_by_mlship(&a);
    // The same workspace added by dvc: the same bytes everywhere.
    repo(&twin);
    workspace(&twin);
    dvc(exe, &twin, &["init", "-q"]);
    let mut args = vec!["add", "-q"];
    args.extend(TRACKED);
    dvc(exe, &twin, &args);
    for f in [
        "data/train.csv.dvc",
        "data/images.dvc",
        "run.sh.dvc",
        "data/.gitignore",
        ".gitignore",
        ".dvcignore",
        ".dvc/.gitignore",
        ".dvc/config",
    ] {
        assert_eq!(
            std::fs::read_to_string(a.join(f)).unwrap(),
            std::fs::read_to_string(twin.join(f)).unwrap(),
            "{f} differs from what dvc writes"
        );
    }
    assert_eq!(cache_listing(&a), cache_listing(&twin));
    assert!(dvc(exe, &a, &["status"]).contains("up to date"));

    add_remote(&a, &remote);
    let pushed = ok(mlship(&a, &["push", "-j", "3"]));
    assert!(pushed.contains("files pushed"), "{pushed}");
    assert!(ok(mlship(&a, &["push"])).contains("Everything is up to date."));
    if let Remote::Folder(_) = &remote {
        assert!(dvc(exe, &a, &["status", "-c"]).contains("in sync"));
    }
    assert!(ok(mlship(&a, &["status", "-c"])).contains("in sync"));
    git(&a, &["add", "-A"]);
    git(&a, &["commit", "-qm", "data"]);

    // Another machine: dvc pulls what mlship pushed.
    git(
        t.path(),
        &["clone", "-q", a.to_str().unwrap(), b.to_str().unwrap()],
    );
    if a.join(".dvc/config.local").exists() {
        std::fs::copy(a.join(".dvc/config.local"), b.join(".dvc/config.local")).unwrap();
    }
    dvc(exe, &b, &["pull", "-q"]);
    assert_eq!(data_of(&b), data_of(&a));
    assert!(exec_bit(&b.join("run.sh")));
    assert!(dvc(exe, &b, &["status"]).contains("up to date"));
    assert!(ok(mlship(&b, &["status"])).contains("up to date"));
    // dvc checkout restores what mlship's cache holds.
    std::fs::remove_dir_all(a.join("data/images")).unwrap();
    let st = ok(mlship(&a, &["status"]));
    assert!(
        st.contains("deleted:") && st.contains("data/images"),
        "{st}"
    );
    dvc(exe, &a, &["checkout", "-q"]);
    assert_eq!(data_of(&a), data_of(&b));
}

fn dvc_then_mlship(exe: &str, remote: Remote) {
    let t = tempfile::tempdir().unwrap();
    let (a, b) = (t.path().join("a"), t.path().join("b"));
    repo(&a);
    workspace(&a);
    dvc(exe, &a, &["init", "-q"]);
    let mut args = vec!["add", "-q"];
    args.extend(TRACKED);
    dvc(exe, &a, &args);
    match &remote {
        Remote::Folder(p) => {
            dvc(
                exe,
                &a,
                &["remote", "add", "-d", "store", p.to_str().unwrap()],
            );
        }
        Remote::S3(url) => {
            dvc(exe, &a, &["remote", "add", "-d", "store", url]);
            let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
            dvc(
                exe,
                &a,
                &["remote", "modify", "store", "endpointurl", &endpoint],
            );
        }
    }
    dvc(exe, &a, &["push", "-q"]);
    assert!(ok(mlship(&a, &["status"])).contains("up to date"));
    assert!(ok(mlship(&a, &["status", "-c"])).contains("in sync"));
    git(&a, &["add", "-A"]);
    git(&a, &["commit", "-qm", "data"]);
    git(
        t.path(),
        &["clone", "-q", a.to_str().unwrap(), b.to_str().unwrap()],
    );
    let before = ok(mlship(&b, &["status"]));
    assert!(before.contains("not in cache"), "{before}");
    let pulled = ok(mlship(&b, &["pull", "-j", "2"]));
    assert!(pulled.contains("A       data/images/"), "{pulled}");
    assert_eq!(data_of(&b), data_of(&a));
    assert!(exec_bit(&b.join("run.sh")));
    assert!(ok(mlship(&b, &["status"])).contains("up to date"));
    assert!(dvc(exe, &b, &["status"]).contains("up to date"));
    // A changed file: both tools see it the same way, and a checkout restores it.
    std::fs::write(b.join("data/images/a.txt"), "changed\n").unwrap();
    let ours = ok(mlship(&b, &["status"]));
    assert!(
        ours.contains("modified:") && ours.contains("data/images"),
        "{ours}"
    );
    assert!(dvc(exe, &b, &["status"]).contains("modified:"));
    let refused = mlship(&b, &["checkout"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "an unsaved change is not overwritten"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("data/images/a.txt"));
    assert_eq!(
        std::fs::read(b.join("data/images/a.txt")).unwrap(),
        b"changed\n"
    );
    ok(mlship(&b, &["checkout", "--force"]));
    assert_eq!(data_of(&b), data_of(&a));
}

#[test]
fn mlship_writes_what_dvc_reads_on_a_folder_remote() {
    let Some(exe) = dvc_exe() else { return };
    let r = tempfile::tempdir().unwrap();
    mlship_then_dvc(&exe, Remote::Folder(r.path().join("remote")));
}

#[test]
fn dvc_writes_what_mlship_reads_on_a_folder_remote() {
    let Some(exe) = dvc_exe() else { return };
    let r = tempfile::tempdir().unwrap();
    dvc_then_mlship(&exe, Remote::Folder(r.path().join("remote")));
}

#[test]
fn both_ways_on_s3() {
    let Some(exe) = dvc_exe() else { return };
    let Some(r) = s3_remote("m") else { return };
    mlship_then_dvc(&exe, r);
    let Some(r) = s3_remote("d") else { return };
    dvc_then_mlship(&exe, r);
}

fn fails(dir: &Path, args: &[&str], needles: &[&str]) -> String {
    let o = mlship(dir, args);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
    assert!(
        err.starts_with("error: ") && err.contains("\nhint: "),
        "{err}"
    );
    for n in needles {
        assert!(err.contains(n), "{args:?}: {err} lacks {n}");
    }
    err
}

#[test]
fn bad_input_is_refused_with_the_reason_and_the_workspace_as_it_was() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    repo(&a);
    fails(&a, &["status"], &["no DVC repository", "mlship data init"]);
    ok(mlship(&a, &["init"]));
    fails(&a, &["init"], &["already"]);
    std::fs::write(t.path().join("outside.txt"), "x").unwrap();
    fails(&a, &["add", "../outside.txt"], &["outside the repository"]);
    fails(&a, &["add", "nope.csv"], &["no such file"]);
    fails(&a, &["add", ".dvc/config"], &["inside .dvc"]);
    std::fs::write(a.join("x.txt"), "precious\n").unwrap();
    ok(mlship(&a, &["add", "x.txt"]));
    assert!(ok(mlship(&a, &["status"])).contains("up to date"));
    // A corrupted cache object is never checked out; the workspace keeps what it had.
    let listing = cache_listing(&a);
    assert_eq!(listing.len(), 1, "{listing:?}");
    let obj = a
        .join(".dvc/cache/files/md5")
        .join(listing[0].split(' ').next().unwrap());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&obj, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::write(&obj, "tampered\n").unwrap();
    std::fs::remove_file(a.join("x.txt")).unwrap();
    fails(&a, &["checkout"], &["corrupted"]);
    assert!(
        !a.join("x.txt").exists(),
        "a corrupted object was checked out"
    );
    // A push never sends it either.
    let r = t.path().join("remote");
    ok(mlship(
        &a,
        &["remote", "add", "-d", "r", r.to_str().unwrap()],
    ));
    fails(&a, &["push"], &["corrupted"]);
    // A .dvc file that does not parse names itself.
    std::fs::write(a.join("bad.dvc"), "outs: [").unwrap();
    fails(&a, &["status"], &["bad.dvc"]);
    std::fs::write(
        a.join("bad.dvc"),
        "outs:\n- md5: c3c6bc2ae8ece4bd2510dca21225c041\n  path: q\n",
    )
    .unwrap();
    fails(&a, &["status"], &["bad.dvc", "dvc cache migrate"]);
    std::fs::remove_file(a.join("bad.dvc")).unwrap();
    // An unreachable remote is an error naming it, promptly.
    ok(mlship(
        &a,
        &["remote", "add", "-d", "far", "s3://bucket/prefix"],
    ));
    ok(mlship(
        &a,
        &[
            "remote",
            "modify",
            "far",
            "endpointurl",
            "http://127.0.0.1:9",
        ],
    ));
    let started = std::time::Instant::now();
    fails(&a, &["status", "-c"], &["remote far"]);
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    fails(
        &a,
        &["push", "-r", "nowhere"],
        &["no remote named 'nowhere'"],
    );
    fails(&a, &["gc", "-w"], &["-f"]);
    fails(&a, &["remote", "add", "bad name", "/tmp"], &["remote name"]);
}

#[test]
fn gc_keeps_what_the_workspace_uses() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    repo(&a);
    ok(mlship(&a, &["init"]));
    std::fs::write(a.join("x.txt"), "one\n").unwrap();
    ok(mlship(&a, &["add", "x.txt"]));
    std::fs::write(a.join("x.txt"), "two\n").unwrap();
    ok(mlship(&a, &["add", "x.txt"]));
    assert_eq!(cache_listing(&a).len(), 2);
    let out = ok(mlship(&a, &["gc", "-w", "-f"]));
    assert!(out.contains("Removed 1 objects"), "{out}");
    assert_eq!(cache_listing(&a).len(), 1);
    std::fs::remove_file(a.join("x.txt")).unwrap();
    ok(mlship(&a, &["checkout"]));
    assert_eq!(std::fs::read(a.join("x.txt")).unwrap(), b"two\n");
    let ls = ok(mlship(&a, &["ls", "--json"]));
    assert!(ls.contains("\"path\":\"x.txt\""), "{ls}");
}

/// A version registered in a DVC repository records the md5 of every tracked output, and
/// `models show` prints them beside the commit.
#[test]
fn a_registered_version_knows_its_data() {
    let t = tempfile::tempdir().unwrap();
    let a = t.path().join("a");
    repo(&a);
    ok(mlship(&a, &["init"]));
    std::fs::create_dir_all(a.join("data")).unwrap();
    std::fs::write(a.join("data/train.csv"), "a,b\n1,2\n").unwrap();
    ok(mlship(&a, &["add", "data/train.csv"]));
    let model = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/corpus/random_forest_regressor/model.pkl");
    let home = t.path().join("home");
    let run = |args: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_mlship"))
            .args(args)
            .current_dir(&a)
            .env("MLSHIP_HOME", &home)
            .output()
            .unwrap();
        ok(o)
    };
    run(&["models", "register", "rf", model.to_str().unwrap()]);
    let doc: serde_json::Value =
        serde_json::from_str(&run(&["models", "show", "rf", "--output", "json"])).unwrap();
    let md5 = crate_md5(b"a,b\n1,2\n");
    assert_eq!(
        doc["versions"][0]["data"]["data/train.csv"],
        md5.as_str(),
        "{doc}"
    );
    let table = run(&["models", "show", "rf"]);
    assert!(
        table.contains(&format!("data        data/train.csv {md5}")),
        "{table}"
    );
}

fn crate_md5(b: &[u8]) -> String {
    mlship_data::objects::md5_hex(b)
}

/// An HTTP server in front of a remote's folder is a read-only remote: pull works, push says why
/// it cannot.
#[test]
fn an_http_remote_is_read_only() {
    use std::io::BufRead;
    let t = tempfile::tempdir().unwrap();
    let (a, b, r) = (
        t.path().join("a"),
        t.path().join("b"),
        t.path().join("remote"),
    );
    tracked_by_mlship(&a);
    ok(mlship(
        &a,
        &["remote", "add", "-d", "store", r.to_str().unwrap()],
    ));
    ok(mlship(&a, &["push"]));
    let mut server = Command::new("python3")
        .args([
            "-u",
            "-m",
            "http.server",
            "0",
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(&r)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("port ")
        .nth(1)
        .and_then(|x| x.split_whitespace().next())
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let url = format!("http://127.0.0.1:{port}");
    git(&a, &["add", "-A"]);
    git(&a, &["commit", "-qm", "data"]);
    git(
        t.path(),
        &["clone", "-q", a.to_str().unwrap(), b.to_str().unwrap()],
    );
    ok(mlship(&b, &["remote", "add", "-d", "web", &url]));
    let pulled = mlship(&b, &["pull"]);
    let _ = server.kill();
    let _ = server.wait();
    ok(pulled);
    assert_eq!(data_of(&b), data_of(&a));
    assert!(ok(mlship(&b, &["status"])).contains("up to date"));
    std::fs::write(b.join("data/train.csv"), "new\n").unwrap();
    ok(mlship(&b, &["add", "data/train.csv"]));
    fails(&b, &["push"], &["read-only"]);
}

/// `dvc` and mlship take the same repository lock (`.dvc/tmp/lock`): neither works in a
/// repository while the other does.
#[test]
fn dvc_and_mlship_never_work_in_one_repository_at_once() {
    let Some(exe) = dvc_exe() else { return };
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("a");
    repo(&a);
    ok(mlship(&a, &["init"]));
    // dvc's own lock (zc.lockfile, from dvc's environment) held by a Python process.
    let python = Path::new(&exe).with_file_name("python");
    let mut holder = Command::new(python)
        .args([
            "-c",
            "import zc.lockfile, time\nl = zc.lockfile.LockFile('.dvc/tmp/lock')\nprint('held', flush=True)\ntime.sleep(60)",
        ])
        .current_dir(&a)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "held");
    let pid = holder.id().to_string();
    fails(&a, &["status"], &["locked by another process", &pid]);
    holder.kill().unwrap();
    holder.wait().unwrap();
    ok(mlship(&a, &["status"]));

    // mlship's lock, held while `mlship run` runs a slow stage: dvc waits, then gives up.
    std::fs::write(a.join("dvc.yaml"), "stages:\n  wait:\n    cmd: sleep 8\n").unwrap();
    let mut run = Command::new(env!("CARGO_BIN_EXE_mlship"))
        .arg("run")
        .current_dir(&a)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = a.join(".dvc/tmp/lock");
    let want = format!(" {}\n", run.id());
    let t = std::time::Instant::now();
    while std::fs::read_to_string(&lock).ok().as_deref() != Some(want.as_str()) {
        assert!(t.elapsed().as_secs() < 5, "mlship run never took the lock");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = Command::new(&exe)
        .arg("status")
        .current_dir(&a)
        .env("DVC_NO_ANALYTICS", "1")
        .env("DVC_NO_UPDATER", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("Unable to acquire lock"),
        "{err}"
    );
    assert!(run.wait().unwrap().success());
}

/// How a workspace file relates to its cache object under each `cache.type`.
#[cfg(unix)]
fn assert_placed(root: &Path, rel: &str, kind: &str) {
    use std::os::unix::fs::MetadataExt;
    let p = root.join(rel);
    let object = {
        let m = crate_md5(&std::fs::read(&p).unwrap());
        root.join(".dvc/cache/files/md5")
            .join(&m[..2])
            .join(&m[2..])
    };
    let (file, obj) = (
        std::fs::symlink_metadata(&p).unwrap(),
        std::fs::metadata(&object).unwrap(),
    );
    match kind {
        "hardlink" => {
            assert_eq!(file.ino(), obj.ino(), "{rel} is not its object");
            assert_eq!(file.mode() & 0o222, 0, "{rel} can be written");
        }
        "symlink" => assert_eq!(std::fs::read_link(&p).unwrap(), object, "{rel}"),
        _ => assert_ne!(file.ino(), obj.ino(), "{rel} shares its object"),
    }
}

/// DVC's `cache.type`: with hardlinks or symlinks, mlship's `add` and `checkout` leave workspace
/// files that are the cache objects (or point at them), and `dvc` reads that workspace as its
/// own; a workspace `dvc` linked, mlship reads and restores the same way.
#[cfg(unix)]
#[test]
fn cache_types_place_files_as_dvc_does() {
    let Some(exe) = dvc_exe() else { return };
    for kind in ["hardlink", "symlink", "reflink,copy"] {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        repo(&a);
        workspace(&a);
        ok(mlship(&a, &["init"]));
        dvc(&exe, &a, &["config", "cache.type", kind]);
        ok(mlship(&a, &["add", "data/images", "data/train.csv"]));
        for rel in [
            "data/images/a.txt",
            "data/images/sub/deeper/c.bin",
            "data/train.csv",
        ] {
            assert_placed(&a, rel, kind);
        }
        assert!(dvc(&exe, &a, &["status"]).contains("up to date"), "{kind}");
        std::fs::remove_dir_all(a.join("data/images")).unwrap();
        ok(mlship(&a, &["checkout"]));
        assert_placed(&a, "data/images/é dir/f.txt", kind);
        assert!(ok(mlship(&a, &["status"])).contains("up to date"), "{kind}");
        assert!(dvc(&exe, &a, &["status"]).contains("up to date"), "{kind}");

        // The other way: dvc adds and links, mlship reads it and restores it alike.
        let b = d.path().join("b");
        repo(&b);
        workspace(&b);
        dvc(&exe, &b, &["init", "-q"]);
        dvc(&exe, &b, &["config", "cache.type", kind]);
        dvc(&exe, &b, &["add", "data/images"]);
        assert_placed(&b, "data/images/a.txt", kind);
        assert!(ok(mlship(&b, &["status"])).contains("up to date"), "{kind}");
        std::fs::remove_file(b.join("data/images/a.txt")).unwrap();
        ok(mlship(&b, &["checkout"]));
        assert_placed(&b, "data/images/a.txt", kind);
        assert!(dvc(&exe, &b, &["status"]).contains("up to date"), "{kind}");
    }
    // An unknown kind is refused naming the setting.
    let d = tempfile::tempdir().unwrap();
    repo(d.path());
    ok(mlship(d.path(), &["init"]));
    std::fs::write(
        d.path().join(".dvc/config"),
        "[cache]\n    type = wormhole\n",
    )
    .unwrap();
    fails(d.path(), &["status"], &["cache.type", "wormhole"]);
}
