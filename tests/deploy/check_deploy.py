"""Structural check of the deployment files, for CI machines without a Docker engine or a cluster.

Parses docker/Dockerfile, docker/compose.yaml and deploy/k8s/*.yaml and checks that every script,
path, stage, flag, environment variable, secret, volume, probe, label and metric they name exists
where they say (in the repo, in the CLI's option table, in the server's metrics, in each other),
and that every script the image runs is one CI runs too. Prints one line per check and a closing
'N passed, N failed' line; exits 1 on any failure."""

import json
import re
import shlex
import sys
from pathlib import Path

import yaml

# --root lets tests/deploy/test_check_deploy.py run the checks on a damaged copy of the repo.
ROOT = Path(sys.argv[sys.argv.index("--root") + 1] if "--root" in sys.argv else Path(__file__).resolve().parents[2])
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
K8S = ROOT / "deploy" / "k8s"
MODELS_DIR = "/var/lib/vlmserve/models"
AUDIT_DIR = "/var/lib/vlmserve/audit"
PORT = 8080
BUILTIN_FLAGS = {"--help", "--config", "--version"}


class Checker:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok    {what}")
        else:
            self.failed += 1
            print(f"FAIL  {what}" + (f" -- {detail}" if detail else ""))
        return ok


def option_names():
    """The CLI's option table: the one place flags and their VLM_* variables are declared."""
    text = (ROOT / "cli" / "option_table.cpp").read_text()
    return set(re.findall(r'\{"([a-z0-9-]+)",\s*(?:top|in|request)\(', text))


def env_name(option):
    return "VLM_" + option.upper().replace("-", "_")


def flags_in(args):
    return [a.split("=", 1)[0] for a in args if a.startswith("--")]


def scripts_run_by_ci():
    """Scripts reachable from .ci/run and from the tests CMake registers (their drivers included),
    following scripts that call scripts; what the Dockerfile runs must be in this set."""
    pattern = re.compile(r"scripts/[A-Za-z0-9_./-]+\.(?:sh|py)")
    texts = [(ROOT / ".ci" / "run").read_text(errors="replace")] if (ROOT / ".ci" / "run").is_file() else []
    for cmake in ROOT.glob("tests/**/CMakeLists.txt"):
        text = cmake.read_text(errors="replace")
        texts.append(text)
        for driver in re.findall(r"\$\{CMAKE_CURRENT_SOURCE_DIR\}/([A-Za-z0-9_.-]+\.py)", text):
            # The checker and its own test only name scripts; they run none.
            if (cmake.parent / driver).is_file() and driver not in ("check_deploy.py", "test_check_deploy.py"):
                texts.append((cmake.parent / driver).read_text(errors="replace"))
    reached, queue = set(), [script for text in texts for script in pattern.findall(text)]
    while queue:
        script = queue.pop()
        if script in reached or not (ROOT / script).is_file():
            continue
        reached.add(script)
        queue.extend(pattern.findall((ROOT / script).read_text(errors="replace")))
    return reached


# Dockerfile

def parse_dockerfile(path):
    """[(instruction, arguments text)], with continuations joined and comments and directives dropped."""
    instructions, current = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, rest = current.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        current = ""
    return instructions


def exec_form(text):
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def substitute(text, args):
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


def check_dockerfile(c, options, ci_scripts):
    c.check(DOCKERFILE.is_file(), "docker/Dockerfile exists")
    instructions = parse_dockerfile(DOCKERFILE)
    args, stages, current = {}, {}, None
    for keyword, rest in instructions:
        if keyword == "ARG" and current is None:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = rest.split()
            image = substitute(words[0], args)
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else f"#{len(stages)}"
            current = {"image": image, "instructions": []}
            stages[name] = current
        elif current is not None:
            current["instructions"].append((keyword, rest))

    c.check(len(stages) >= 3, "Dockerfile is multi-stage", f"{len(stages)} stages")
    cuda = [n for n, s in stages.items() if re.fullmatch(r"nvidia/cuda:13\.[0-9.]+-(cudnn-)?devel-ubuntu[0-9.]+", s["image"])]
    c.check(bool(cuda), "a build stage uses an NVIDIA CUDA 13 devel base", str({n: s["image"] for n, s in stages.items()}))
    c.check("cpu" in stages, "a CPU-only target named 'cpu' exists", str(list(stages)))
    runtime_stages = [n for n, s in stages.items() if any(k == "ENTRYPOINT" for k, _ in s["instructions"])]
    c.check({"cpu", "gpu"} <= set(runtime_stages), "runtime targets 'cpu' and 'gpu' have an ENTRYPOINT", str(runtime_stages))
    c.check(list(stages)[-1] == "gpu", "the default (last) target is the GPU runtime")

    for name, stage in stages.items():
        for keyword, rest in stage["instructions"]:
            if keyword == "RUN":
                words = shlex.split(rest)
                script = words[1] if words and words[0] in ("bash", "sh") and len(words) > 1 else words[0]
                is_script = re.fullmatch(r"scripts/[A-Za-z0-9_.-]+\.sh", script or "") is not None
                c.check(is_script, f"[{name}] RUN is a call to a repo script: {rest}")
                c.check((ROOT / script).is_file(), f"[{name}] {script} exists")
                c.check(script in ci_scripts, f"[{name}] {script} is run by CI too", "not reached from .ci/run or tests/")
                c.check(not any(op in rest for op in ("&&", ";", "|")), f"[{name}] RUN runs one script only: {rest}")
            elif keyword in ("COPY", "ADD"):
                words = shlex.split(rest)
                from_stage = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
                paths = [w for w in words if not w.startswith("--")]
                if from_stage:
                    c.check(from_stage in stages and list(stages).index(from_stage) < list(stages).index(name),
                            f"[{name}] COPY --from={from_stage} names an earlier stage")
                    source_stage = stages.get(from_stage, {"instructions": []})
                    produced = " ".join(r for k, r in source_stage["instructions"] if k == "RUN")
                    if not source_stage["instructions"]:  # a plain base image: only its apt keys
                        c.check(paths[:-1] == ["/etc/apt/trusted.gpg.d/"],
                                f"[{name}] COPY --from={from_stage} takes only the apt keys of a base image: {paths[:-1]}")
                        continue
                    c.check(all(p.startswith("/stage") for p in paths[:-1]) and "/stage" in produced,
                            f"[{name}] COPY --from={from_stage} takes what stage_runtime.sh staged: {paths[:-1]}")
                else:
                    for source in paths[:-1]:
                        c.check((ROOT / source).exists(), f"[{name}] COPY source {source} exists in the build context")
    for name in ("cpu", "gpu"):
        stage = stages.get(name)
        if not stage:
            continue
        keys = dict()
        for keyword, rest in stage["instructions"]:
            keys.setdefault(keyword, []).append(rest)
        c.check(not keys.get("RUN"), f"[{name}] runtime stage installs nothing (no RUN)")
        user = (keys.get("USER") or ["root"])[-1].split(":")[0]
        c.check(user not in ("root", "0"), f"[{name}] runs as a non-root user", user)
        c.check(str(PORT) in " ".join(keys.get("EXPOSE", [])), f"[{name}] EXPOSE {PORT}")
        health = " ".join(keys.get("HEALTHCHECK", []))
        c.check("/health" in health and "CMD" in health, f"[{name}] HEALTHCHECK probes /health")
        entry = exec_form((keys.get("ENTRYPOINT") or [""])[-1])
        c.check(entry == ["vlmserve"], f'[{name}] ENTRYPOINT ["vlmserve"]', str(entry))
        cmd = exec_form((keys.get("CMD") or [""])[-1]) or []
        c.check(cmd[:1] == ["serve"], f"[{name}] CMD starts with serve", str(cmd))
        for flag in flags_in(cmd):
            c.check(flag[2:] in options or flag in BUILTIN_FLAGS, f"[{name}] CMD flag {flag} is in the option table")
        env_text = " ".join(keys.get("ENV", []))
        for var in re.findall(r"\b(VLM_[A-Z0-9_]+)=", env_text):
            c.check(var in {env_name(o) for o in options}, f"[{name}] ENV {var} is an option's variable")
        volumes = " ".join(keys.get("VOLUME", []))
        c.check(MODELS_DIR in volumes and AUDIT_DIR in volumes, f"[{name}] models and audit volumes declared")
    ignore = DOCKERFILE.with_name("Dockerfile.dockerignore")
    ignored = ignore.read_text().split() if ignore.is_file() else []
    c.check({".venv", ".git", "build"} <= set(ignored), "Dockerfile.dockerignore keeps .venv, .git and build out")
    return stages


# compose

def check_compose(c, options, stages):
    doc = yaml.safe_load(COMPOSE.read_text())
    services = doc.get("services", {})
    c.check("vlmserve" in services, "compose: service vlmserve")
    top_volumes = doc.get("volumes") or {}
    top_secrets = doc.get("secrets") or {}
    for name, service in services.items():
        build = service.get("build") or {}
        context = (COMPOSE.parent / build.get("context", ".")).resolve()
        c.check(context == ROOT, f"compose[{name}]: build context is the repo root", str(context))
        c.check((context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE,
                f"compose[{name}]: build.dockerfile is docker/Dockerfile")
        c.check(build.get("target") in stages, f"compose[{name}]: build target {build.get('target')} is a Dockerfile stage")
        env = service.get("environment") or {}
        for key, value in env.items():
            if key.startswith("VLM_"):
                c.check(key in {env_name(o) for o in options}, f"compose[{name}]: {key} is an option's variable")
        mounts = {str(v).split(":")[1]: str(v).split(":")[0] for v in service.get("volumes", [])}
        for target in (MODELS_DIR, AUDIT_DIR):
            c.check(target in mounts and mounts[target] in top_volumes,
                    f"compose[{name}]: a named volume is mounted at {target}")
        c.check(env.get("VLM_CACHE") == MODELS_DIR, f"compose[{name}]: hf:// cache is the models volume")
        c.check(env.get("VLM_AUDIT_DIR") == AUDIT_DIR, f"compose[{name}]: the audit chain is on the audit volume")
        key_dir = str(Path(env.get("VLM_AUDIT_KEY_FILE", "/")).parent)
        c.check(mounts.get(key_dir) in top_volumes and mounts.get(key_dir) != mounts.get(AUDIT_DIR),
                f"compose[{name}]: the audit key lives on its own named volume", key_dir)
        used_secrets = service.get("secrets") or []
        c.check(bool(used_secrets) and all(s in top_secrets for s in used_secrets),
                f"compose[{name}]: secrets are declared", str(used_secrets))
        c.check(env.get("VLM_API_KEY_FILE") in {f"/run/secrets/{s}" for s in used_secrets},
                f"compose[{name}]: VLM_API_KEY_FILE reads the secret")
        c.check(any(str(p).split(":")[-1] == str(PORT) for p in service.get("ports", [])), f"compose[{name}]: port {PORT} published")
        grace = str(service.get("stop_grace_period", "10s"))
        drain = float(env.get("VLM_DRAIN_TIMEOUT_S", 30))
        c.check(grace.endswith("s") and float(grace[:-1]) > drain,
                f"compose[{name}]: stop_grace_period {grace} outlasts the drain ({drain} s)")
        if stages.get(build.get("target"), {}).get("image", "").startswith("nvidia") or build.get("target") == "gpu":
            devices = (((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices") or []
            c.check(any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices),
                    f"compose[{name}]: reserves an NVIDIA GPU")
    for name, secret in top_secrets.items():
        path = COMPOSE.parent / secret.get("file", "")
        ignore = path.parent / ".gitignore"
        c.check(path.parent.is_dir() and ignore.is_file() and "*" in ignore.read_text().split(),
                f"compose: secret {name} file lives in a git-ignored folder", str(path))


# Kubernetes

def load_k8s():
    documents = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                documents.setdefault(doc.get("kind"), []).append((path.name, doc))
    return documents


def one(documents, kind):
    found = documents.get(kind) or [("", {})]
    return found[0][1]


def matches(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_k8s(c, options):
    documents = load_k8s()
    for kind, docs in documents.items():
        for file, doc in docs:
            if kind == "Kustomization":
                for resource in doc.get("resources", []):
                    c.check((K8S / resource).is_file(), f"k8s {file}: resource {resource} exists")
                continue
            c.check(bool(doc.get("apiVersion")) and bool(kind) and bool((doc.get("metadata") or {}).get("name")),
                    f"k8s {file}: {kind} has apiVersion, kind and metadata.name")
    deployment = one(documents, "Deployment")
    pod = deployment.get("spec", {}).get("template", {})
    labels = pod.get("metadata", {}).get("labels", {})
    c.check(matches(deployment.get("spec", {}).get("selector", {}).get("matchLabels"), labels),
            "Deployment selector matches its pod labels")
    spec = pod.get("spec", {})
    (container,) = spec.get("containers", [{}])[:1] or [{}]
    c.check(str(container.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")) == "1", "Deployment requests one GPU")
    probe_path = lambda name: ((container.get(name) or {}).get("httpGet") or {}).get("path")  # noqa: E731
    c.check(probe_path("readinessProbe") == "/ready", "readiness probe on /ready")
    c.check(probe_path("livenessProbe") == "/health", "liveness probe on /health")
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    c.check(PORT in ports.values(), f"container port {PORT}")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        port = ((container.get(probe) or {}).get("httpGet") or {}).get("port")
        if port is not None:
            c.check(port in ports or port == PORT, f"{probe} port {port} is the container's")
    args = container.get("args", [])
    c.check(args[:1] == ["serve"], "container args start with serve")
    for flag in flags_in(args):
        c.check(flag[2:] in options or flag in BUILTIN_FLAGS, f"container flag {flag} is in the option table")
    env_names = {env_name(o) for o in options}
    config_maps = {d.get("metadata", {}).get("name"): d for _, d in documents.get("ConfigMap", [])}
    secrets = {d.get("metadata", {}).get("name"): d for _, d in documents.get("Secret", [])}
    for source in container.get("envFrom", []):
        name = (source.get("configMapRef") or {}).get("name")
        c.check(name in config_maps, f"envFrom ConfigMap {name} is defined")
        for key in (config_maps.get(name) or {}).get("data", {}):
            c.check(key in env_names, f"ConfigMap {name}: {key} is an option's variable")
    for var in container.get("env", []):
        if var["name"].startswith("VLM_"):
            c.check(var["name"] in env_names, f"env {var['name']} is an option's variable")
        ref = (var.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            c.check(ref.get("key") in (secrets.get(ref.get("name")) or {}).get("stringData", {}),
                    f"env {var['name']} reads a key the Secret defines")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    claims = {d.get("metadata", {}).get("name") for _, d in documents.get("PersistentVolumeClaim", [])}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    for mount in mounts.values():
        volume = volumes.get(mount["name"], {})
        c.check(bool(volume), f"mount {mount['mountPath']} has a volume")
        if "persistentVolumeClaim" in volume:
            c.check(volume["persistentVolumeClaim"]["claimName"] in claims, f"PVC {volume['persistentVolumeClaim']['claimName']} is defined")
        if "secret" in volume:
            name = volume["secret"]["secretName"]
            keys = {i["key"] for i in volume["secret"].get("items", [])}
            c.check(keys <= set((secrets.get(name) or {}).get("stringData", {})), f"secret volume keys exist in {name}")
    c.check(MODELS_DIR in mounts and AUDIT_DIR in mounts, "models and audit volumes mounted")
    env_values = {v["name"]: v.get("value", "") for v in container.get("env", [])}
    names = list(env_values)
    audit_dir, key_file = env_values.get("VLM_AUDIT_DIR", ""), env_values.get("VLM_AUDIT_KEY_FILE", "")
    c.check(audit_dir.startswith(AUDIT_DIR + "/$(POD_NAME)/") and "POD_NAME" in names
            and names.index("POD_NAME") < names.index("VLM_AUDIT_DIR"),
            "each pod writes its own audit chain under the audit volume ($(POD_NAME), defined before use)", audit_dir)
    c.check(key_file.startswith(AUDIT_DIR + "/$(POD_NAME)/") and not key_file.startswith(audit_dir + "/"),
            "the audit key lives in the pod's folder, outside its log folder", key_file)
    for init in spec.get("initContainers", []):
        for mount in init.get("volumeMounts", []):
            volume = volumes.get(mount["name"], {})
            c.check(bool(volume), f"init container {init['name']}: mount {mount['mountPath']} has a volume")
            if "secret" in volume:
                keys = {i["key"] for i in volume["secret"].get("items", [])}
                c.check(keys <= set((secrets.get(volume["secret"]["secretName"]) or {}).get("stringData", {})),
                        f"init container {init['name']}: secret keys exist")
        c.check(key_file in init.get("command", []), f"init container {init['name']} writes the audit key the server reads")
        init_mounts = {m["mountPath"]: m["name"] for m in init.get("volumeMounts", [])}
        c.check(init_mounts.get(AUDIT_DIR) == mounts.get(AUDIT_DIR, {}).get("name"),
                f"init container {init['name']} sees the same audit volume")
    api_key_file = next((v.get("value") for v in container.get("env", []) if v["name"] == "VLM_API_KEY_FILE"), "")
    c.check(any(api_key_file.startswith(p + "/") for p, m in mounts.items() if "secret" in volumes.get(m["name"], {})),
            "VLM_API_KEY_FILE lies in the mounted Secret")
    pre_stop = (((container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}).get("command", [])
    c.check(len(pre_stop) == 2 and pre_stop[0] == "sleep", "preStop waits for endpoint removal", str(pre_stop))
    drain = float(next(iter(config_maps.values()), {}).get("data", {}).get("VLM_DRAIN_TIMEOUT_S", 30))
    grace = spec.get("terminationGracePeriodSeconds", 30)
    sleep = float(pre_stop[1]) if len(pre_stop) == 2 else 0
    c.check(grace > sleep + drain, f"terminationGracePeriodSeconds {grace} > preStop {sleep} + drain {drain}")
    security = spec.get("securityContext", {})
    c.check(security.get("runAsNonRoot") is True and security.get("runAsUser", 0) != 0, "pod runs as non-root")

    service = one(documents, "Service")
    c.check(matches(service.get("spec", {}).get("selector"), labels), "Service selects the Deployment's pods")
    c.check(all(p.get("targetPort") in ports or p.get("targetPort") == PORT for p in service.get("spec", {}).get("ports", [])),
            "Service targetPort is a container port")
    pdb = one(documents, "PodDisruptionBudget")
    c.check(matches(pdb.get("spec", {}).get("selector", {}).get("matchLabels"), labels), "PDB selects the Deployment's pods")
    c.check(pdb.get("spec", {}).get("minAvailable", 0) >= 1 or "maxUnavailable" in pdb.get("spec", {}), "PDB keeps a pod up")

    hpa = one(documents, "HorizontalPodAutoscaler")
    target = hpa.get("spec", {}).get("scaleTargetRef", {})
    c.check(target.get("kind") == "Deployment" and target.get("name") == deployment.get("metadata", {}).get("name"),
            "HPA scales the Deployment")
    metric_names = [m.get("pods", {}).get("metric", {}).get("name") for m in hpa.get("spec", {}).get("metrics", [])
                    if m.get("type") == "Pods"]
    c.check(metric_names == ["vlm_queue_depth"], "HPA scales on the pods metric vlm_queue_depth", str(metric_names))
    server_sources = " ".join(p.read_text(errors="replace") for p in (ROOT / "server").glob("*.cpp"))
    c.check("vlm_queue_depth" in server_sources, "the server exports vlm_queue_depth on /metrics")
    adapter = config_maps.get("prometheus-adapter-vlmserve", {}).get("data", {}).get("config.yaml", "")
    rules = (yaml.safe_load(adapter) or {}).get("rules", []) if adapter else []
    c.check(any(r.get("name", {}).get("as") in metric_names and "vlm_queue_depth" in r.get("seriesQuery", "")
                for r in rules), "Prometheus adapter rule serves the HPA's metric")


def main():
    c = Checker()
    options = option_names()
    c.check({"model", "host", "port", "api-key-file", "cache", "offline"} <= options,
            "the option table declares model, host, port, api-key-file, cache, offline", str(sorted(options)))
    ci_scripts = scripts_run_by_ci()
    stages = check_dockerfile(c, options, ci_scripts)
    check_compose(c, options, stages)
    check_k8s(c, options)
    print(f"{c.passed} passed, {c.failed} failed")
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
