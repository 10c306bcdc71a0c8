#!/usr/bin/env python3
"""Writes the image scripts/bench-image.sh unpacks: an OCI layout at ARGV[1]
tagged "bench", gzip layers made with GNU tar, LAYERS layers (default 3)
of FILES files in all (default 10,500) holding MB megabytes (default 220)
of half-compressible data, the later layers changing and deleting (.wh.)
some of the first's. Deterministic: the same arguments give the same image.
"""
import gzip, hashlib, json, os, random, shutil, subprocess, sys, tempfile

out = sys.argv[1]
layers = int(os.environ.get("LAYERS", 3))
files = int(os.environ.get("FILES", 10500))
mb = int(os.environ.get("MB", 220))
rnd = random.Random(42)
words = [bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9))) for _ in range(4000)]

def content(n):
    # Half text (compresses ~3x), half random bytes (does not).
    half = n // 2
    text = b" ".join(rnd.choice(words) for _ in range(half // 5 + 1))[:half]
    return text + rnd.randbytes(n - len(text))

tmp = tempfile.mkdtemp(prefix="rcrun-mkimage.")
os.makedirs(f"{out}/blobs/sha256", exist_ok=True)
def blob(b):
    d = hashlib.sha256(b).hexdigest()
    with open(f"{out}/blobs/sha256/{d}", "wb") as f:
        f.write(b)
    return "sha256:" + d, len(b)

per_layer = [files * 6 // 10, files * 3 // 10]
per_layer += [files - sum(per_layer)] if layers > 2 else []
per_layer = (per_layer + [max(1, files // 10)] * layers)[:layers]
diff_ids, descs, first = [], [], []
for i, n in enumerate(per_layer):
    root = f"{tmp}/l{i}"
    os.makedirs(root)
    size = mb * 1024 * 1024 * n // files
    for j in range(n):
        d = f"{root}/d{i}/{j % 97}"
        os.makedirs(d, exist_ok=True)
        p = f"{d}/f{j}"
        with open(p, "wb") as f:
            f.write(content(max(1, int(rnd.expovariate(1) * size / n))))
        if i == 0:
            first.append(f"d0/{j % 97}/f{j}")
    if i > 0:
        # Change and delete some of the first layer's files.
        for k in range(0, len(first), 50):
            rel = first[k]
            os.makedirs(os.path.dirname(f"{root}/{rel}"), exist_ok=True)
            if k % 100 == 0:
                open(f"{root}/{os.path.dirname(rel)}/.wh.{os.path.basename(rel)}", "w").close()
            else:
                with open(f"{root}/{rel}", "wb") as f:
                    f.write(content(4096))
    tar = f"{tmp}/l{i}.tar"
    subprocess.run(["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
                    "--mtime=@1700000000", "-C", root, "-cf", tar, "."], check=True)
    raw = open(tar, "rb").read()
    diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
    d, s = blob(gzip.compress(raw, compresslevel=6, mtime=0))
    descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s})
    shutil.rmtree(root)
    os.unlink(tar)
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                  "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
cd, cs = blob(cfg)
m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                "layers": descs}).encode()
md, ms = blob(m)
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": ms, "annotations": {"org.opencontainers.image.ref.name": "bench"}}]},
          open(f"{out}/index.json", "w"))
open(f"{out}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
shutil.rmtree(tmp)
print(json.dumps({"layers": len(descs), "files": files, "compressed_bytes": sum(x["size"] for x in descs)}))
