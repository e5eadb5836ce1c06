"""Times `mlship data` and the real `dvc` on the same data in one run and prints the ratios.

    data.py MLSHIP_BINARY DVC_EXECUTABLE

Two datasets (sizes from the environment): one file of BIG_MIB [1024] MiB of random bytes, and
SMALL [10000] files of 1 KiB. For each tool and dataset, in a fresh git repository with a folder
remote: `add`, a no-op `status` (median of 5), `push`, `status -c`, and `pull` into a fresh
clone. The floor for the big file is `md5sum` plus `cp` of it. The page cache is warm for both
tools (the data was just written).
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

BIG_MIB = int(os.environ.get("BIG_MIB", 1024))
SMALL = int(os.environ.get("SMALL", 10_000))
ENV = {**os.environ, "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1", "RUST_LOG": "warn"}


def run(cmd, cwd):
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{cmd} in {cwd} failed: {r.stderr.decode()[-2000:]}")
    return wall


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.email=b@example.com", "-c", "user.name=b", *args], cwd=cwd,
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_data(root):
    big = os.path.join(root, "big")
    os.makedirs(big)
    with open(os.path.join(big, "big.bin"), "wb") as f:
        for _ in range(BIG_MIB):
            f.write(os.urandom(1 << 20))
    small = os.path.join(root, "small", "small")
    os.makedirs(small)
    for i in range(SMALL):
        d = os.path.join(small, f"d{i % 100:02d}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.bin"), "wb") as f:
            f.write(os.urandom(1024))
    return {"big": (big, "big.bin"), "small": (os.path.dirname(small), "small")}


def one(tool, exe, source, target, work):
    """Times one tool on one dataset; returns {line: seconds}."""
    repo = os.path.join(work, f"{tool}-{target}")
    remote = os.path.join(work, f"{tool}-{target}-remote")
    shutil.copytree(source, repo, symlinks=True)
    git(repo, "init", "-q")
    cmd = [exe] if tool == "dvc" else [exe, "data"]
    run(cmd + ["init", "-q"] if tool == "dvc" else cmd + ["init"], repo)
    out = {}
    out["add"] = run(cmd + ["add", target], repo)
    out["status, nothing changed"] = statistics.median(run(cmd + ["status"], repo) for _ in range(5))
    run(cmd + ["remote", "add", "-d", "store", remote], repo)
    out["push"] = run(cmd + ["push"], repo)
    out["status -c"] = run(cmd + ["status", "-c"], repo)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "data")
    clone = repo + "-clone"
    git(work, "clone", "-q", repo, clone)
    out["pull into a fresh clone"] = run(cmd + ["pull"], clone)
    return out


def main():
    mlship, dvc = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="mlship-bench-data-")
    try:
        sets = make_data(os.path.join(work, "src"))
        big = os.path.join(sets["big"][0], "big.bin")
        floor = run(["md5sum", big], work) + run(["cp", big, os.path.join(work, "copy.bin")], work)
        os.remove(os.path.join(work, "copy.bin"))
        rows = []
        for name, (source, target) in sets.items():
            label = f"{BIG_MIB} MiB file" if name == "big" else f"{SMALL} files of 1 KiB"
            d = one("dvc", dvc, source, target, work)
            m = one("mlship", mlship, source, target, work)
            for line in d:
                rows.append((f"{line}, {label}", m[line], d[line]))
        print(f"{'line':44} {'mlship s':>9} {'dvc s':>9} {'ratio':>7}")
        for line, m, d in rows:
            print(f"{line:44} {m:9.3f} {d:9.3f} {d / m:6.1f}x")
        add_big = next(m for line, m, _ in rows if line.startswith("add, ") and "MiB" in line)
        print(f"{'md5sum + cp of the big file (the floor)':44} {floor:9.3f}           {add_big / floor:6.2f}x of the floor for mlship's add")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
