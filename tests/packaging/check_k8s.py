#!/usr/bin/env python3
"""Checks deploy/k8s (run by check_packages.sh): every file parses as YAML, the kustomization
names files that exist, and the pieces fit together: a headless Service on the builder's gRPC
port selecting the Deployment's pods, gRPC probes on that port, one GPU per pod, a token
mounted where the arguments say, every $(VAR) in the arguments defined by the ConfigMap, and a
termination grace period that covers the builder's own shutdown grace plus 45 s."""
import pathlib
import re
import sys

import yaml


def main(k8s_dir):
    k8s = pathlib.Path(k8s_dir)
    docs = {}
    for path in sorted(k8s.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.setdefault(doc["kind"], []).append(doc)
    problems = []

    def expect(cond, what):
        if not cond:
            problems.append(what)

    kust = docs["Kustomization"][0]
    for res in kust["resources"]:
        expect((k8s / res).is_file(), f"kustomization names a missing file {res}")
    secret = kust["secretGenerator"][0]["name"]

    deploy = docs["Deployment"][0]
    pod = deploy["spec"]["template"]["spec"]
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    expect(deploy["spec"]["selector"]["matchLabels"].items() <= labels.items(),
           "the Deployment's selector does not match its pod labels")
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    args = container["args"]
    listen = [a for a in args if a.startswith("--listen=")]
    expect(listen and listen[0].endswith(f":{ports.get('grpc')}"),
           f"--listen does not serve the grpc containerPort: {listen}")
    for probe in ("readinessProbe", "livenessProbe"):
        expect(container.get(probe, {}).get("grpc", {}).get("port") == ports.get("grpc"),
               f"{probe} is not a gRPC probe on the grpc port")
    limits = container["resources"]["limits"]
    expect(str(limits.get("nvidia.com/gpu")) == "1", "the pod does not ask for one nvidia.com/gpu")
    expect(pod["securityContext"].get("runAsNonRoot") is True, "the pod may run as root")

    config = docs["ConfigMap"][0]
    env_names = {c["configMapRef"]["name"] for c in container.get("envFrom", [])}
    expect(config["metadata"]["name"] in env_names, "the ConfigMap is not in envFrom")
    for var in re.findall(r"\$\((\w+)\)", " ".join(args)):
        expect(var in config["data"], f"$({var}) in the arguments is not in the ConfigMap")
    grace = int(config["data"]["SHUTDOWN_GRACE_SECONDS"])
    expect(pod["terminationGracePeriodSeconds"] >= grace + 45,
           "terminationGracePeriodSeconds < SHUTDOWN_GRACE_SECONDS + 45")

    token = [a.split("=", 1)[1] for a in args if a.startswith("--token-file=")]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted = [m for m in container["volumeMounts"]
               if token and token[0].startswith(m["mountPath"] + "/")
               and volumes[m["name"]].get("secret", {}).get("secretName") == secret]
    expect(mounted, f"--token-file {token} is not in a mount of the secret {secret}")

    (service,) = docs["Service"]
    expect(service["spec"].get("clusterIP") == "None", "the Service is not headless")
    expect(service["spec"]["selector"].items() <= labels.items(),
           "the Service does not select the builder pods")
    svc_ports = {p["name"]: p for p in service["spec"]["ports"]}
    expect(svc_ports.get("grpc", {}).get("port") == ports.get("grpc"),
           "the Service's grpc port is not the container's")

    if problems:
        print("\n".join(problems))
        return 1
    print(f"{sum(len(v) for v in docs.values())} documents parse and fit together")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
