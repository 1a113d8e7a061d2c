#!/usr/bin/env python3
"""Check `kubectl kustomize container/` against the pod contract in CLAUDE.md.

usage: check_manifest.py RENDERED.yaml CONTAINER_DIR   (exit 1 with reasons on failure)
"""
import os
import sys

import yaml

rendered, container_dir = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
problems = []


def expect(cond, what):
    if not cond:
        problems.append(what)


by_kind = {d["kind"]: d for d in docs}
expect(sorted(by_kind) == ["ConfigMap", "PersistentVolumeClaim", "Pod"], f"kinds: {sorted(by_kind)}")
labels = {
    "app.kubernetes.io/name": "trampoline",
    "app.kubernetes.io/instance": "default",
    "app.kubernetes.io/managed-by": "trampoline",
}
for d in docs:
    got = d["metadata"].get("labels", {})
    for k, v in labels.items():
        expect(got.get(k) == v, f"{d['kind']}: label {k}={got.get(k)!r}")
    expect("trampoline.dev/owner" in got, f"{d['kind']}: no trampoline.dev/owner label")

cm, pvc, pod = by_kind.get("ConfigMap"), by_kind.get("PersistentVolumeClaim"), by_kind.get("Pod")
expect(cm["metadata"]["name"] == "trampoline-default-scripts", "ConfigMap name")
files = sorted(f for f in os.listdir(container_dir) if f.endswith(".sh")) + ["nix.conf", "sshd_config", "passwd", "group"]
expect(sorted(cm["data"]) == sorted(files), f"ConfigMap keys {sorted(cm['data'])} != {sorted(files)}")
for f in files:
    expect(cm["data"].get(f) == open(os.path.join(container_dir, f)).read(), f"ConfigMap {f} differs from the file")

expect(pvc["metadata"]["name"] == "trampoline-default", "PVC name")
expect(pvc["spec"]["accessModes"] == ["ReadWriteOnce"], "PVC access mode")
expect("storage" in pvc["spec"]["resources"]["requests"], "PVC storage request")

spec = pod["spec"]
expect(pod["metadata"]["name"] == "trampoline-default", "Pod name")
expect(spec["restartPolicy"] == "OnFailure", "restartPolicy")
inits = {c["name"]: c for c in spec.get("initContainers", [])}
ctrs = {c["name"]: c for c in spec["containers"]}
expect(list(inits) == ["store-init"], f"init containers {list(inits)}")
expect(sorted(ctrs) == ["nix-daemon", "user"], f"containers {sorted(ctrs)}")


def mounts(c):
    return {m["mountPath"]: (m["name"], m.get("subPath")) for m in c.get("volumeMounts", [])}


for c in list(inits.values()) + list(ctrs.values()):
    n = c["name"]
    expect(c["image"].startswith("docker.io/nixos/nix:"), f"{n}: image {c['image']} (the official Nix image, pinned)")
    expect(c.get("imagePullPolicy") == "IfNotPresent", f"{n}: imagePullPolicy")
    expect(c.get("terminationMessagePolicy") == "FallbackToLogsOnError", f"{n}: terminationMessagePolicy")
    expect(c.get("command", [""])[0].startswith("/opt/trampoline/"), f"{n}: command from the ConfigMap")
    expect("requests" in c.get("resources", {}) and "limits" in c.get("resources", {}), f"{n}: resources")
    expect(mounts(c).get("/opt/trampoline") == ("scripts", None), f"{n}: scripts at /opt/trampoline")
    expect(bool(c.get("securityContext", {}).get("privileged")) == (n == "nix-daemon"), f"{n}: privileged only for nix-daemon")

si = inits["store-init"]
sc = si["securityContext"]
expect(sc.get("runAsUser") == 0 and sc.get("allowPrivilegeEscalation") is False, "store-init: root, no escalation")
expect(sc["capabilities"]["drop"] == ["ALL"], "store-init: drops ALL")
expect(set(sc["capabilities"].get("add", [])) <= {"CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"}, "store-init: minimal capabilities")
expect(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "store-init: seccomp")
m = mounts(si)
expect(m.get("/mnt/nix") == ("data", "nix"), "store-init: nix at /mnt/nix")
expect(m.get("/mnt/workspace") == ("data", "workspace") and m.get("/mnt/home") == ("data", "home"), "store-init: workspace, home")

d = ctrs["nix-daemon"]
m = mounts(d)
expect(m.get("/nix") == ("data", "nix") and m.get("/run/trampoline") == ("run", None), "nix-daemon: mounts")
expect("/etc/trampoline/ssh" not in m, "nix-daemon: no ssh secret")
expect("/etc/trampoline/agent" not in m, "nix-daemon: no agent secret")
probe = d.get("readinessProbe", {}).get("exec", {}).get("command", [])
expect("ping" in probe and "daemon" in probe, f"nix-daemon: readiness {probe}")

u = ctrs["user"]
sc = u["securityContext"]
expect(sc.get("runAsUser") == 1000 and sc.get("runAsGroup") == 1000 and sc.get("runAsNonRoot") is True, "user: UID/GID 1000, non-root")
expect(sc.get("allowPrivilegeEscalation") is False and sc["capabilities"]["drop"] == ["ALL"], "user: no escalation, no caps")
expect(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "user: seccomp")
expect(u.get("readinessProbe", {}).get("tcpSocket", {}).get("port") == 2222, "user: readiness tcp 2222")
env = {e["name"]: e.get("value") for e in u.get("env", [])}
expect(env.get("NIX_REMOTE") == "daemon", "user: NIX_REMOTE")
expect(env.get("TRAMPOLINE_IDLE_TIMEOUT") == "1800", "user: TRAMPOLINE_IDLE_TIMEOUT")
expect(env.get("HOME") == "/home/trampoline", "user: HOME")
m = mounts(u)
for path, want in {"/nix": ("data", "nix"), "/workspace": ("data", "workspace"), "/home/trampoline": ("data", "home"),
                   "/run/trampoline": ("run", None), "/etc/trampoline/ssh": ("ssh", None),
                   "/etc/trampoline/agent": ("agent", None)}.items():
    expect(m.get(path) == want, f"user: mount {path} = {m.get(path)}")

vols = {v["name"]: v for v in spec["volumes"]}
expect(vols["data"]["persistentVolumeClaim"]["claimName"] == "trampoline-default", "data volume")
expect(vols["scripts"]["configMap"]["name"] == "trampoline-default-scripts", "scripts volume")
expect(vols["scripts"]["configMap"].get("defaultMode") == 0o555, "scripts mode 0555")
expect(vols["ssh"]["secret"]["secretName"] == "trampoline-default-ssh", "ssh volume")
agent = vols.get("agent", {}).get("secret", {})
expect(agent.get("secretName") == "trampoline-default-agent", "agent volume")
expect(agent.get("optional") is True, "agent secret optional (the pod starts before any key is stored)")
expect(agent.get("defaultMode") == 0o444, "agent secret readable by UID 1000 (no fsGroup)")
expect(all(name != "agent" for name, _ in mounts(si).values()), "store-init: no agent secret")
expect("emptyDir" in vols["run"], "run volume")

if problems:
    print("\n".join(problems))
    sys.exit(1)
