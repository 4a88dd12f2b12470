"""Validate rendered Helm output against the Kubernetes JSON schemas, strictly.

Run by helm/check with the tools virtualenv's Python (kubernetes-validate, PyYAML):

    python validate_manifests.py --kube-version 1.30 --kube-version 1.37 rendered.yaml...

For every object in every file:
  * schema-valid for each Kubernetes version, in strict mode (unknown fields are errors);
  * a kind with no schema is an ERROR (kubernetes-validate's CLI only warns), unless it
    is allow-listed below, where a small hand-written structural check applies instead;
  * names are DNS-1123, label keys and values are valid, no (kind, namespace, name)
    appears twice;
  * cross-references hold: Deployment selector vs. pod labels, Service / PDB /
    ServiceMonitor selectors match the gateway pods or Service, HPA and Ingress targets
    exist, probe ports are named container ports, an HPA-managed Deployment sets no
    replicas, no secret-looking setting sits in a ConfigMap, dashboards are valid JSON.

Exit status 0 when everything passed, 1 otherwise (every problem is printed).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from typing import Any

import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DURATION = re.compile(r"^([0-9]+(ms|s|m|h))+$")

# Kinds that have no schema in kubernetes-validate (CRDs), with the check applied instead.
ALLOWED_UNKNOWN_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}

# Names that must never be rendered into a ConfigMap (they belong in a Secret).
SECRET_SETTINGS = {"GATEWAY_REDIS_URL"}


def check_service_monitor(doc: dict[str, Any]) -> list[str]:
    errors = []
    allowed_top = {"apiVersion", "kind", "metadata", "spec"}
    errors += [f"unexpected top-level field {k!r}" for k in doc if k not in allowed_top]
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return [*errors, "spec must be an object"]
    allowed_spec = {
        "jobLabel",
        "targetLabels",
        "podTargetLabels",
        "endpoints",
        "selector",
        "namespaceSelector",
        "sampleLimit",
        "scrapeProtocols",
        "targetLimit",
        "labelLimit",
        "labelNameLengthLimit",
        "labelValueLengthLimit",
        "keepDroppedTargets",
        "attachMetadata",
        "scrapeClass",
        "bodySizeLimit",
        "selectorMechanism",
    }
    errors += [f"unexpected spec field {k!r}" for k in spec if k not in allowed_spec]
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        errors.append("spec.selector needs matchLabels or matchExpressions")
    endpoints = spec.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        errors.append("spec.endpoints must be a non-empty list")
        return errors
    allowed_ep = {
        "port",
        "targetPort",
        "path",
        "scheme",
        "params",
        "interval",
        "scrapeTimeout",
        "tlsConfig",
        "bearerTokenFile",
        "bearerTokenSecret",
        "authorization",
        "honorLabels",
        "honorTimestamps",
        "trackTimestampsStaleness",
        "basicAuth",
        "oauth2",
        "metricRelabelings",
        "relabelings",
        "proxyUrl",
        "followRedirects",
        "enableHttp2",
        "filterRunning",
    }
    for i, ep in enumerate(endpoints):
        if not isinstance(ep, dict):
            errors.append(f"spec.endpoints[{i}] must be an object")
            continue
        errors += [f"unexpected spec.endpoints[{i}] field {k!r}" for k in ep if k not in allowed_ep]
        if not ep.get("port") and not ep.get("targetPort"):
            errors.append(f"spec.endpoints[{i}] needs port or targetPort")
        for key in ("interval", "scrapeTimeout"):
            if key in ep and not DURATION.match(str(ep[key])):
                errors.append(f"spec.endpoints[{i}].{key} {ep[key]!r} is not a duration")
        if ep.get("scheme") not in (None, "http", "https"):
            errors.append(f"spec.endpoints[{i}].scheme must be http or https")
        for key in ("relabelings", "metricRelabelings"):
            if key in ep and not isinstance(ep[key], list):
                errors.append(f"spec.endpoints[{i}].{key} must be a list")
    return errors


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"):
        return doc.get("spec", {}).get("template", {}).get("spec")
    if doc["kind"] == "Pod":
        return doc.get("spec")
    return None


def pod_labels(doc: dict[str, Any]) -> dict[str, str]:
    if doc["kind"] == "Pod":
        return doc.get("metadata", {}).get("labels") or {}
    return doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {}


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def check_object(doc: dict[str, Any]) -> list[str]:
    """Checks that need only the object itself."""
    errors: list[str] = []
    meta = doc.get("metadata") or {}
    name = meta.get("name", "")
    if not DNS_SUBDOMAIN.match(name) or len(name) > 253:
        errors.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    if doc["kind"] in ("Service", "Namespace") and (not DNS_LABEL.match(name) or len(name) > 63):
        errors.append(f"metadata.name {name!r} is not a DNS-1123 label (max 63)")
    ns = meta.get("namespace")
    if ns is not None and (not DNS_LABEL.match(ns) or len(ns) > 63):
        errors.append(f"metadata.namespace {ns!r} is not a DNS-1123 label")
    label_sets = [("metadata.labels", meta.get("labels") or {})]
    if doc["kind"] != "Pod" and pod_spec(doc) is not None:
        label_sets.append(("spec.template.metadata.labels", pod_labels(doc)))
    for where, labels in label_sets:
        for key, value in labels.items():
            prefix, _, base = key.rpartition("/")
            if (
                (prefix and not DNS_SUBDOMAIN.match(prefix))
                or len(base) > 63
                or not LABEL_NAME.match(base)
            ):
                errors.append(f"{where}: invalid label key {key!r}")
            if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                errors.append(f"{where}: invalid value {value!r} for label {key!r}")

    if doc["kind"] == "Deployment":
        selector = doc["spec"].get("selector", {}).get("matchLabels") or {}
        if not matches(selector, pod_labels(doc)):
            errors.append("spec.selector.matchLabels does not match the pod template labels")

    spec = pod_spec(doc)
    if spec is not None:
        for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            port_names = {p.get("name") for p in c.get("ports") or [] if p.get("name")}
            for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
                if isinstance(port, str) and port not in port_names:
                    errors.append(f"container {c['name']}: {probe} uses unknown port name {port!r}")
            sc = c.get("securityContext") or {}
            if sc.get("privileged") or sc.get("allowPrivilegeEscalation"):
                errors.append(f"container {c['name']}: privileged or allowPrivilegeEscalation")

    if doc["kind"] == "ConfigMap":
        data = doc.get("data") or {}
        for key in SECRET_SETTINGS & set(data):
            errors.append(f"ConfigMap holds {key}: secrets belong in a Secret")
        for key, value in data.items():
            if key.endswith(".json"):
                try:
                    json.loads(value)
                except ValueError as exc:
                    errors.append(f"data[{key!r}] is not valid JSON: {exc}")
    return errors


def check_references(docs: list[dict[str, Any]]) -> list[str]:
    """Checks across the objects of one rendering."""
    errors: list[str] = []
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    seen = Counter(
        (d["kind"], (d.get("metadata") or {}).get("namespace", ""), d["metadata"]["name"])
        for d in docs
    )
    errors += [
        f"duplicate object {k}/{n} in namespace {ns!r}" for (k, ns, n), c in seen.items() if c > 1
    ]

    workloads = [d for d in docs if d["kind"] == "Deployment"]
    services = by_kind.get("Service", [])
    hpa_targets = {
        h["spec"]["scaleTargetRef"]["name"] for h in by_kind.get("HorizontalPodAutoscaler", [])
    }
    for h in by_kind.get("HorizontalPodAutoscaler", []):
        ref = h["spec"]["scaleTargetRef"]
        if not any(
            w["metadata"]["name"] == ref["name"] and w["kind"] == ref["kind"] for w in workloads
        ):
            errors.append(
                f"HPA {h['metadata']['name']}: target {ref['kind']}/{ref['name']} is not rendered"
            )
    for w in workloads:
        if w["metadata"]["name"] in hpa_targets and "replicas" in w["spec"]:
            errors.append(
                f"Deployment {w['metadata']['name']}: sets replicas although an HPA manages it"
            )
    for s in services:
        sel = s["spec"].get("selector") or {}
        hits = [w for w in workloads if matches(sel, pod_labels(w))]
        if len(hits) != 1:
            errors.append(
                f"Service {s['metadata']['name']}: selector {sel} matches "
                f"{len(hits)} workloads, expected 1"
            )
            continue
        container_ports = {
            p.get("name")
            for c in pod_spec(hits[0]).get("containers", [])
            for p in c.get("ports") or []
        }
        for p in s["spec"].get("ports", []):
            if isinstance(p.get("targetPort"), str) and p["targetPort"] not in container_ports:
                errors.append(
                    f"Service {s['metadata']['name']}: targetPort {p['targetPort']!r} "
                    "is not a container port"
                )
    for p in by_kind.get("PodDisruptionBudget", []):
        sel = p["spec"]["selector"].get("matchLabels") or {}
        if len([w for w in workloads if matches(sel, pod_labels(w))]) != 1:
            errors.append(f"PDB {p['metadata']['name']}: selector matches no single workload")
    for n in by_kind.get("NetworkPolicy", []):
        sel = n["spec"]["podSelector"].get("matchLabels") or {}
        if not any(matches(sel, pod_labels(w)) for w in workloads):
            errors.append(f"NetworkPolicy {n['metadata']['name']}: podSelector matches no workload")
    service_ports = {
        s["metadata"]["name"]: {p["port"] for p in s["spec"].get("ports", [])} for s in services
    }
    for i in by_kind.get("Ingress", []):
        for rule in i["spec"].get("rules", []):
            for path in rule.get("http", {}).get("paths", []):
                svc = path["backend"]["service"]
                if svc["name"] not in service_ports:
                    errors.append(
                        f"Ingress {i['metadata']['name']}: "
                        f"backend Service {svc['name']} is not rendered"
                    )
                elif svc["port"].get("number") not in service_ports[svc["name"]]:
                    errors.append(
                        f"Ingress {i['metadata']['name']}: "
                        f"backend port {svc['port']} not on Service {svc['name']}"
                    )
    for m in by_kind.get("ServiceMonitor", []):
        sel = m["spec"]["selector"].get("matchLabels") or {}
        hits = [s for s in services if matches(sel, s["metadata"].get("labels") or {})]
        if len(hits) != 1:
            errors.append(
                f"ServiceMonitor {m['metadata']['name']}: selector matches "
                f"{len(hits)} Services, expected 1"
            )
            continue
        names = {p.get("name") for p in hits[0]["spec"].get("ports", [])}
        for ep in m["spec"]["endpoints"]:
            if ep.get("port") and ep["port"] not in names:
                errors.append(
                    f"ServiceMonitor {m['metadata']['name']}: port {ep['port']!r} not on Service"
                )
    return errors


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--kube-version",
        action="append",
        required=True,
        help="Kubernetes version to validate against (repeatable); 'latest' for the newest known",
    )
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    versions = [
        kubernetes_validate.utils.latest_version() if v == "latest" else v
        for v in args.kube_version
    ]

    failed = False
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            try:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as exc:
                print(f"FAIL {path}: not valid YAML: {exc}")
                failed = True
                continue
        problems: list[str] = []
        for d in docs:
            if not isinstance(d, dict) or not {"apiVersion", "kind", "metadata"} <= set(d):
                problems.append(f"document without apiVersion/kind/metadata: {str(d)[:80]}")
        docs = [
            d for d in docs if isinstance(d, dict) and {"apiVersion", "kind", "metadata"} <= set(d)
        ]
        if not docs:
            problems.append("no Kubernetes objects rendered")
        for d in docs:
            ident = f"{d['kind']}/{d['metadata'].get('name')}"
            problems += [f"{ident}: {e}" for e in check_object(d)]
            for version in versions:
                try:
                    kubernetes_validate.validate(d, version, strict=True)
                except SchemaNotFoundError:
                    if (d["apiVersion"], d["kind"]) in ALLOWED_UNKNOWN_KINDS:
                        if d["kind"] == "ServiceMonitor":
                            problems += [f"{ident}: {e}" for e in check_service_monitor(d)]
                    else:
                        problems.append(
                            f"{ident}: no schema for {d['apiVersion']} {d['kind']} "
                            f"in Kubernetes {version} (unknown kind, and not allow-listed)"
                        )
                except ValidationError as exc:
                    where = "/".join(str(p) for p in exc.path) or "(root)"
                    problems.append(f"{ident}: Kubernetes {version}: at {where}: {exc.message}")
        problems += check_references(docs)
        kinds = Counter(d["kind"] for d in docs)
        summary = ", ".join(f"{k} x{c}" if c > 1 else k for k, c in sorted(kinds.items()))
        if problems:
            failed = True
            print(f"FAIL {path}:")
            for p in dict.fromkeys(problems):
                print(f"  - {p}")
        else:
            print(
                f"  ok  {path}: {len(docs)} objects valid for Kubernetes "
                f"{', '.join(versions)} ({summary})"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
