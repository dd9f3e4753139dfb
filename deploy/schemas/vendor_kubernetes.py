"""Re-make deploy/schemas/kubernetes/ from the kubernetes-validate wheel (PyPI).

    python -m pip download --no-deps kubernetes-validate==1.37.0 -d /tmp/kv
    python deploy/schemas/vendor_kubernetes.py /tmp/kv/kubernetes_validate-1.37.0-py3-none-any.whl

For each kind the manifests use, the strict schema of Kubernetes v1.32.0 is written as one
self-contained file: its references into the 1.3 MB ``_definitions.json`` are rewritten to local
``#/$defs/...`` and only the definitions it reaches are kept.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path

VERSION = "v1.32.0-local-strict"
KINDS = [
    "configmap-v1",
    "deployment-apps-v1",
    "namespace-v1",
    "networkpolicy-networking-v1",
    "poddisruptionbudget-policy-v1",
    "secret-v1",
    "service-v1",
    "serviceaccount-v1",
]
REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(.+)$")
HERE = Path(__file__).parent / "kubernetes"


def _localize(node: object, reached: set[str]) -> object:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and (m := REF.match(value)):
                reached.add(m.group(1))
                out[key] = f"#/$defs/{m.group(1)}"
            else:
                out[key] = _localize(value, reached)
        return out
    if isinstance(node, list):
        return [_localize(item, reached) for item in node]
    return node


def main(wheel: str) -> None:
    prefix = f"kubernetes_validate/kubernetes-json-schema/{VERSION}/"
    with zipfile.ZipFile(wheel) as zf:
        definitions = json.loads(zf.read(prefix + "_definitions.json"))["$defs"]
        HERE.mkdir(exist_ok=True)
        for kind in KINDS:
            reached: set[str] = set()
            schema = _localize(json.loads(zf.read(f"{prefix}{kind}.json")), reached)
            assert isinstance(schema, dict)
            defs: dict[str, object] = {}
            while pending := reached - set(defs):
                for name in sorted(pending):
                    defs[name] = _localize(definitions[name], reached)
            schema.pop("$id", None)
            schema["$defs"] = dict(sorted(defs.items()))
            (HERE / f"{kind}.json").write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
