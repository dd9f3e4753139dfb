"""Validate deploy/ offline: the compose file and every rendered Kubernetes manifest against the
JSON schemas vendored in deploy/schemas/ (see deploy/schemas/README.md for their sources).

Kustomize is rendered by a small pure-Python renderer covering what deploy/k8s uses (resources,
namespace, labels, images, replicas, strategic-merge patches by kind and name). When `kubectl` is
on the PATH, `kubectl kustomize` renders each directory too and both renders must agree, so the
renderer cannot drift from the real kustomize unnoticed.

    python scripts/validate_deploy.py            # exit status 1 on the first invalid document
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema.validators import validator_for

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SCHEMAS = DEPLOY / "schemas"
KUSTOMIZATIONS = [DEPLOY / "k8s" / "base", DEPLOY / "k8s" / "overlays" / "example"]
CLUSTER_SCOPED = {"Namespace"}
# (apiVersion, kind) -> schema file under deploy/schemas/
SCHEMA_OF = {
    ("v1", "ConfigMap"): "kubernetes/configmap-v1.json",
    ("v1", "Namespace"): "kubernetes/namespace-v1.json",
    ("v1", "Secret"): "kubernetes/secret-v1.json",
    ("v1", "Service"): "kubernetes/service-v1.json",
    ("v1", "ServiceAccount"): "kubernetes/serviceaccount-v1.json",
    ("apps/v1", "Deployment"): "kubernetes/deployment-apps-v1.json",
    ("networking.k8s.io/v1", "NetworkPolicy"): "kubernetes/networkpolicy-networking-v1.json",
    ("policy/v1", "PodDisruptionBudget"): "kubernetes/poddisruptionbudget-policy-v1.json",
    ("postgresql.cnpg.io/v1", "Cluster"): "cloudnative-pg/cluster-postgresql-v1.json",
    (
        "postgresql.cnpg.io/v1",
        "ScheduledBackup",
    ): "cloudnative-pg/scheduledbackup-postgresql-v1.json",
}

Doc = dict[str, Any]


# --- a pure-Python kustomize (the subset deploy/k8s uses) -----------------------------------------


def _documents(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge as kustomize does it for our patches: maps merge, lists of named maps merge
    by name, any other list is replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in [*base, *patch])
    ):
        by_name = {item["name"]: item for item in base}
        merged_list = [_merge(by_name[i["name"]], i) if i["name"] in by_name else i for i in patch]
        patched = {i["name"] for i in patch}
        return [item for item in base if item["name"] not in patched] + merged_list
    return copy.deepcopy(patch)


def _containers(doc: Doc) -> Iterator[Doc]:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    yield from pod.get("containers", [])
    yield from pod.get("initContainers", [])


def render(directory: Path) -> list[Doc]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    known = {
        "apiVersion",
        "kind",
        "resources",
        "namespace",
        "labels",
        "images",
        "replicas",
        "patches",
    }
    unknown = set(spec) - known
    if unknown:
        raise ValueError(f"{directory}: the renderer does not know {sorted(unknown)}")
    docs: list[Doc] = []
    for resource in spec.get("resources", []):
        path = directory / resource
        docs.extend(render(path) if path.is_dir() else _documents(path))
    for entry in spec.get("patches", []):
        for patch in _documents(directory / entry["path"]):
            targets = [
                d
                for d in docs
                if d["kind"] == patch["kind"] and d["metadata"]["name"] == patch["metadata"]["name"]
            ]
            if len(targets) != 1:
                raise ValueError(f"patch {entry['path']} matches {len(targets)} resources")
            docs[docs.index(targets[0])] = _merge(targets[0], patch)
    for label in spec.get("labels", []):
        if label.get("includeSelectors") or label.get("includeTemplates"):
            raise ValueError("the renderer only adds labels to metadata")
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])
    for image in spec.get("images", []):
        for doc in docs:
            for container in _containers(doc):
                name, _, _tag = container["image"].partition(":")
                if name == image["name"]:
                    new_name = image.get("newName", name)
                    container["image"] = f"{new_name}:{image.get('newTag', _tag)}"
    for replica in spec.get("replicas", []):
        for doc in docs:
            if doc["kind"] == "Deployment" and doc["metadata"]["name"] == replica["name"]:
                doc["spec"]["replicas"] = replica["count"]
    if "namespace" in spec:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = spec["namespace"]
    return docs


def _kubectl_render(directory: Path) -> list[Doc] | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    done = subprocess.run(  # noqa: S603  (a fixed argv, no shell)
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {directory} failed:\n{done.stderr}")
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _key(doc: Doc) -> str:
    return json.dumps(doc, sort_keys=True)


# --- validation ---------------------------------------------------------------------------------


def _validator(relative: str) -> Any:
    schema = json.loads((SCHEMAS / relative).read_text())
    cls = validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def errors_in(doc: Doc) -> list[str]:
    relative = SCHEMA_OF.get((doc.get("apiVersion"), doc.get("kind")))
    if relative is None:
        return [f"no vendored schema for {doc.get('apiVersion')} {doc.get('kind')}"]
    found = sorted(_validator(relative).iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in found]


def compose_errors(path: Path) -> list[str]:
    found = _validator("compose-spec.json").iter_errors(yaml.safe_load(path.read_text()))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in found]


def main() -> int:
    failures = 0
    for compose in sorted((DEPLOY / "compose").glob("compose*.yaml")):
        problems = compose_errors(compose)
        failures += len(problems)
        print(f"{'ok ' if not problems else 'BAD'} {compose.relative_to(ROOT)} (compose-spec)")
        for problem in problems:
            print(f"    {problem}")
    for directory in KUSTOMIZATIONS:
        docs = render(directory)
        by_kubectl = _kubectl_render(directory)
        note = "rendered in Python"
        if by_kubectl is not None:
            if sorted(map(_key, docs)) != sorted(map(_key, by_kubectl)):
                print(
                    f"BAD {directory.relative_to(ROOT)}: the renderer and kubectl kustomize differ"
                )
                failures += 1
            note += ", equal to kubectl kustomize"
        print(f"    {directory.relative_to(ROOT)}: {len(docs)} documents ({note})")
        for doc in docs:
            problems = errors_in(doc)
            failures += len(problems)
            name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            print(f"{'ok ' if not problems else 'BAD'} {directory.relative_to(ROOT)} {name}")
            for problem in problems:
                print(f"    {problem}")
    print("deploy/ is valid" if not failures else f"{failures} problem(s) in deploy/")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
