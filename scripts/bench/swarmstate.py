#!/usr/bin/env python3
"""Snapshots of a stack's objects and their Version.Index, to count writes.

    swarmstate.py snapshot STACK FILE   services and secrets (id, name, Version.Index), networks
    swarmstate.py diff BEFORE AFTER     prints key=value lines: services, services_changed,
                                        service_index_sum_before/after, secrets, secrets_changed,
                                        secrets_added, secrets_removed, networks_added,
                                        networks_removed, writes (all changes added up)

Reads only names, IDs and versions (never secret data, which Swarm does not return anyway).
DOCKER (default: docker) is the CLI.
"""

import json
import os
import subprocess
import sys

DOCKER = os.environ.get("DOCKER", "docker")


def docker(*args):
    return subprocess.run([DOCKER, *args], check=True, capture_output=True, text=True).stdout


def listing(kind, stack):
    ids = docker(kind, "ls", "-q", "--filter", f"label=com.docker.stack.namespace={stack}").split()
    if not ids:
        return []
    return json.loads(docker(kind, "inspect", *ids))


def snapshot(stack, path):
    state = {
        "services": {
            s["ID"]: {"name": s["Spec"]["Name"], "version": s["Version"]["Index"]}
            for s in listing("service", stack)
        },
        "secrets": {
            s["ID"]: {"name": s["Spec"]["Name"], "version": s["Version"]["Index"]}
            for s in listing("secret", stack)
        },
        "networks": {n["Id"]: n["Name"] for n in listing("network", stack)},
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(state, handle, indent=1)


def diff(before_path, after_path):
    with open(before_path, encoding="utf-8") as handle:
        before = json.load(handle)
    with open(after_path, encoding="utf-8") as handle:
        after = json.load(handle)
    out = {}
    for kind in ("services", "secrets"):
        old, new = before[kind], after[kind]
        out[kind] = len(new)
        out[f"{kind}_changed"] = sum(
            1 for i in new if i in old and new[i]["version"] != old[i]["version"]
        )
        out[f"{kind}_added"] = sum(1 for i in new if i not in old)
        out[f"{kind}_removed"] = sum(1 for i in old if i not in new)
    out["service_index_sum_before"] = sum(s["version"] for s in before["services"].values())
    out["service_index_sum_after"] = sum(s["version"] for s in after["services"].values())
    out["networks_added"] = sum(1 for i in after["networks"] if i not in before["networks"])
    out["networks_removed"] = sum(1 for i in before["networks"] if i not in after["networks"])
    out["writes"] = sum(
        out[k]
        for k in (
            "services_changed", "services_added", "services_removed",
            "secrets_changed", "secrets_added", "secrets_removed",
            "networks_added", "networks_removed",
        )
    )
    for key, value in out.items():
        print(f"{key}={value}")


def main(argv):
    if len(argv) == 3 and argv[0] == "snapshot":
        snapshot(argv[1], argv[2])
    elif len(argv) == 3 and argv[0] == "diff":
        diff(argv[1], argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
