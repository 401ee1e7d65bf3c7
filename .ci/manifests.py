#!/usr/bin/env python3
"""Renders the kustomizations in k3s/ and validates every resource.

Built-in kinds are validated strictly against the Kubernetes schemas
(kubernetes-validate); CloudNativePG resources, whose schemas it does not carry,
are checked for the fields the operator requires. Exits non-zero on any problem.
"""
import os
import shutil
import subprocess
import sys

import kubernetes_validate
import yaml

KUBERNETES = "1.32.0"
TARGETS = ["k3s", "k3s/overlays/patroni"]
FILES = ["k3s/secret.example.yaml"]


def required(resource, *paths):
    problems = []
    for path in paths:
        value = resource
        for key in path.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        if value in (None, "", [], {}):
            problems.append(f"missing {path}")
    return problems


def check_cnpg(resource):
    kind = resource["kind"]
    if kind == "Cluster":
        problems = required(
            resource,
            "spec.instances",
            "spec.storage.size",
            "spec.bootstrap.initdb.database",
            "spec.bootstrap.initdb.owner",
            "spec.backup.barmanObjectStore.destinationPath",
        )
        if resource["spec"].get("instances", 0) < 3:
            problems.append("fewer than 3 instances")
        if resource["spec"].get("enableSuperuserAccess", False):
            problems.append("superuser access enabled")
        return problems
    if kind == "ScheduledBackup":
        return required(resource, "spec.schedule", "spec.cluster.name")
    return [f"unknown CloudNativePG kind {kind}"]


def render(target):
    """The resources of a kustomization: by kubectl where it exists, else by
    reading its resources and setting its namespace (patches are not applied)."""
    if shutil.which("kubectl"):
        rendered = subprocess.run(
            ["kubectl", "kustomize", target], check=True, capture_output=True, text=True
        ).stdout
        return [d for d in yaml.safe_load_all(rendered) if d]
    with open(os.path.join(target, "kustomization.yaml")) as f:
        kustomization = yaml.safe_load(f)
    namespace = kustomization.get("namespace")
    resources = []
    for entry in kustomization.get("resources", []):
        path = os.path.normpath(os.path.join(target, entry))
        if os.path.isdir(path):
            resources += render(path)
        else:
            with open(path) as f:
                resources += [d for d in yaml.safe_load_all(f) if d]
    for resource in resources:
        if namespace and resource["kind"] != "Namespace":
            resource.setdefault("metadata", {})["namespace"] = namespace
    return resources


def main():
    failures = 0
    checked = 0
    documents = []
    for target in TARGETS:
        documents += [(target, d) for d in render(target)]
    for path in FILES:
        with open(path) as f:
            documents += [(path, d) for d in yaml.safe_load_all(f) if d]
    for source, resource in documents:
        name = f"{source}: {resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
        checked += 1
        if resource.get("apiVersion", "").startswith("postgresql.cnpg.io/"):
            problems = check_cnpg(resource)
        else:
            try:
                kubernetes_validate.validate(resource, KUBERNETES, strict=True)
                problems = []
            except kubernetes_validate.ValidationError as error:
                problems = [str(error.message)]
            except kubernetes_validate.SchemaNotFoundError as error:
                problems = [f"no schema: {error}"]
        if resource.get("metadata", {}).get("namespace") not in (None, "site-pulse-360") or (
            resource["kind"] != "Namespace" and resource.get("metadata", {}).get("namespace") is None
        ):
            problems.append("not in namespace site-pulse-360")
        for problem in problems:
            failures += 1
            print(f"INVALID {name}: {problem}")
    print(f"manifests: {checked} resources checked, {failures} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
