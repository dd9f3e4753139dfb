"""deploy/ validates against the vendored schemas, and the validation rejects what it should."""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import validate_deploy as vd


def _rendered(kind: str, name: str) -> dict:
    docs = vd.render(vd.DEPLOY / "k8s" / "overlays" / "example")
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_every_manifest_and_the_compose_file_validate() -> None:
    assert vd.main() == 0


def test_the_overlay_changes_what_it_says() -> None:
    ledger = _rendered("Deployment", "ledger")
    assert ledger["spec"]["replicas"] == 4
    assert ledger["metadata"]["namespace"] == "ownership-ledger"
    image = ledger["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "registry.example.com/support/ownership-ledger:0.1.0"
    cluster = _rendered("Cluster", "ledger-db")
    assert cluster["spec"]["instances"] == 3
    assert cluster["spec"]["storage"] == {"size": "500Gi", "storageClass": "fast-ssd"}
    assert cluster["spec"]["postgresql"]["synchronous"]["dataDurability"] == "required"


def test_a_misspelt_deployment_field_is_caught() -> None:
    ledger = copy.deepcopy(_rendered("Deployment", "ledger"))
    ledger["spec"]["replica"] = ledger["spec"].pop("replicas")
    assert any("replica" in e for e in vd.errors_in(ledger))
    probe = ledger["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    probe["grpc"]["port"] = "grpc"  # a gRPC probe takes a number, not a port name
    assert any("readinessProbe" in e for e in vd.errors_in(ledger))


def test_a_wrong_cloudnative_pg_setting_is_caught() -> None:
    cluster = copy.deepcopy(_rendered("Cluster", "ledger-db"))
    cluster["spec"]["postgresql"]["synchronous"]["method"] = "all"
    cluster["spec"]["instance"] = 3
    errors = vd.errors_in(cluster)
    assert any("synchronous" in e for e in errors)
    assert any("instance" in e for e in errors)


def test_a_kind_without_a_vendored_schema_is_refused() -> None:
    assert vd.errors_in({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {}})


def test_a_compose_file_with_an_unknown_key_is_caught(tmp_path: Path) -> None:
    compose = yaml.safe_load((vd.DEPLOY / "compose" / "compose.yaml").read_text())
    compose["services"]["ledger"]["healthchek"] = compose["services"]["ledger"].pop("healthcheck")
    broken = tmp_path / "compose.yaml"
    broken.write_text(yaml.safe_dump(compose))
    assert any("healthchek" in e for e in vd.compose_errors(broken))
