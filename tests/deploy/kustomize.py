"""A small, offline kustomize renderer for the subset deploy/k8s uses, and no more.

Neither PyPI nor Debian's current release has a usable kustomize (Debian's kubernetes-client is
1.20, whose kustomize predates `patches` and `labels`), so the tests render the overlays with
this. Wherever `kubectl` is installed, tests/deploy/test_manifests.py also renders them with
`kubectl kustomize` and requires the same objects, so this file cannot drift from the real thing
unnoticed.

Supported, exactly (anything else in a kustomization.yaml raises `Unsupported`):
- `resources`: YAML files (several documents each) and directories holding a kustomization;
- `namespace` (every namespaced object), `labels` (`pairs` on metadata.labels, and with
  `includeTemplates` on pod templates and volume claim templates; no `includeSelectors`);
- `configMapGenerator` and `secretGenerator` with `envs`, `files` and `literals`, and
  `behavior` create, merge or replace; names get kustomize's content-hash suffix and every
  reference to them from a pod template is rewritten;
- `patches` with `path` only: strategic merge patches that name their target by kind and
  metadata.name, several documents a file; lists merge by key where Kubernetes says so
  (containers, env, volumes and volumeMounts by their keys), other lists are replaced;
- `patches` with `target` (`kind` and `name` only) and `patch` (inline) or `path`: JSON patches
  (RFC 6902) with the operations add, replace and remove;
- `images` (`name`, `newName`, `newTag`) and `replicas` (`name`, `count`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

__all__ = ["Unsupported", "render"]

Obj = dict[str, Any]

SUPPORTED_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "namespace",
    "labels",
    "configMapGenerator",
    "secretGenerator",
    "patches",
    "images",
    "replicas",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass"}
# Where a pod template names a ConfigMap or a Secret (kustomize's name references).
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
# Strategic merge keys of the lists deploy/k8s patches (from the Kubernetes API's
# x-kubernetes-patch-merge-key); every other list is replaced whole, as kustomize does.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
}
GENERATED = "__generated__"  # marks an object made by a generator (removed from the output)


class Unsupported(Exception):
    """The kustomization uses a feature this renderer does not implement."""


def render(directory: Path) -> list[Obj]:
    """The objects `kubectl kustomize DIRECTORY` prints, in no particular order."""
    objects = _build(directory)
    renames: dict[tuple[str, str], str] = {}
    for obj in objects:
        if obj.pop(GENERATED, False):
            name = obj["metadata"]["name"]
            hashed = f"{name}-{_hash(obj)}"
            obj["metadata"]["name"] = hashed
            renames[(obj["kind"], name)] = hashed
    for obj in objects:
        if obj["kind"] in WORKLOADS:
            _rename_references(obj["spec"]["template"]["spec"], renames)
    return objects


def _build(directory: Path) -> list[Obj]:
    path = directory / "kustomization.yaml"
    k = yaml.safe_load(path.read_text())
    unknown = set(k) - SUPPORTED_KEYS
    if unknown:
        raise Unsupported(f"{path}: {sorted(unknown)}")
    objects: list[Obj] = []
    for entry in k.get("resources", []):
        target = directory / entry
        if target.is_dir():
            objects.extend(_build(target))
        else:
            objects.extend(d for d in yaml.safe_load_all(target.read_text()) if d)
    for kind, key in (("ConfigMap", "configMapGenerator"), ("Secret", "secretGenerator")):
        for spec in k.get(key, []):
            _generate(directory, kind, spec, objects)
    for patch in k.get("patches", []):
        if "target" in patch:
            _json_patch(objects, patch, directory)
            continue
        if set(patch) != {"path"}:
            raise Unsupported(f"{path}: patches other than `path:` or `target:` {patch}")
        for doc in yaml.safe_load_all((directory / patch["path"]).read_text()):
            if doc:
                target = _find(objects, doc["kind"], doc["metadata"]["name"])
                merged = _merge(target, doc)
                target.clear()
                target.update(merged)
    if "namespace" in k:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = k["namespace"]
    for label in k.get("labels", []):
        if set(label) - {"pairs", "includeTemplates"}:
            raise Unsupported(f"{path}: labels options {sorted(set(label))}")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(label["pairs"])
            if label.get("includeTemplates") and obj["kind"] in WORKLOADS:
                template = obj["spec"]["template"].setdefault("metadata", {})
                template.setdefault("labels", {}).update(label["pairs"])
                for claim in obj["spec"].get("volumeClaimTemplates", []):
                    claim["metadata"].setdefault("labels", {}).update(label["pairs"])
    for image in k.get("images", []):
        if set(image) - {"name", "newName", "newTag"}:
            raise Unsupported(f"{path}: images options {image}")
        for obj in objects:
            if obj["kind"] in WORKLOADS:
                _set_image(obj["spec"]["template"]["spec"], image)
    for replicas in k.get("replicas", []):
        matches = [o for o in objects if o["kind"] in WORKLOADS and _name(o) == replicas["name"]]
        if not matches:
            raise LookupError(f"{path}: replicas for unknown {replicas['name']}")
        for obj in matches:
            obj["spec"]["replicas"] = replicas["count"]
    return objects


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def _find(objects: list[Obj], kind: str, name: str) -> Obj:
    for obj in objects:
        if obj["kind"] == kind and _name(obj) == name:
            return obj
    raise LookupError(f"no {kind} {name} to patch")


def _json_patch(objects: list[Obj], patch: Obj, directory: Path) -> None:
    """A JSON patch (RFC 6902: add, replace, remove) on the one object `target` names."""
    if set(patch) - {"target", "patch", "path"} or set(patch["target"]) != {"kind", "name"}:
        raise Unsupported(f"patch options {patch}")
    text = patch["patch"] if "patch" in patch else (directory / patch["path"]).read_text()
    target = _find(objects, patch["target"]["kind"], patch["target"]["name"])
    for op in yaml.safe_load(text):
        if op["op"] not in ("add", "replace", "remove") or set(op) - {"op", "path", "value"}:
            raise Unsupported(f"JSON patch operation {op}")
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]
        ]
        holder: Any = target
        for part in parents:
            holder = holder[int(part)] if isinstance(holder, list) else holder[part]
        if isinstance(holder, list):
            index = len(holder) if last == "-" else int(last)
            if op["op"] == "add":
                holder.insert(index, copy.deepcopy(op["value"]))
            elif op["op"] == "replace":
                holder[index] = copy.deepcopy(op["value"])
            else:
                del holder[index]
        elif op["op"] == "remove":
            del holder[last]
        else:
            if op["op"] == "replace" and last not in holder:
                raise LookupError(f"replace of missing {op['path']}")
            holder[last] = copy.deepcopy(op["value"])


def _generate(directory: Path, kind: str, spec: Obj, objects: list[Obj]) -> None:
    unknown = set(spec) - {"name", "behavior", "envs", "files", "literals"}
    if unknown:
        raise Unsupported(f"{kind} generator options {sorted(unknown)}")
    data: dict[str, str] = {}
    for env_file in spec.get("envs", []):
        for line in (directory / env_file).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, sep, value = line.partition("=")
                if not sep:
                    raise Unsupported(f"{env_file}: {line!r} has no '='")
                data[key] = value
    for file in spec.get("files", []):
        data[Path(file).name] = (directory / file).read_text()
    for literal in spec.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    behavior = spec.get("behavior", "create")
    existing = [o for o in objects if o["kind"] == kind and _name(o) == spec["name"]]
    if behavior == "create":
        if existing:
            raise LookupError(f"{kind} {spec['name']} generated twice")
        obj: Obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": spec["name"]}}
        if kind == "Secret":
            obj["type"] = "Opaque"
        obj["data"] = {}
        obj[GENERATED] = True
        objects.append(obj)
    elif behavior in ("merge", "replace"):
        if len(existing) != 1:
            raise LookupError(f"{behavior}: no single {kind} {spec['name']} in the bases")
        obj = existing[0]
        if behavior == "replace":
            obj["data"] = {}
    else:
        raise Unsupported(f"behavior {behavior}")
    if kind == "Secret":
        data = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    obj["data"].update(data)


def _hash(obj: Obj) -> str:
    """kustomize's name suffix: the first 10 hex digits of SHA-256 over Go's JSON of
    kind, data (and type, for a Secret), with some digits swapped for letters. kustomize's
    hasher looks the name up with a path its lookup does not split, so "name" is always
    empty, and absent data is the empty string (api/hasher/hasher.go)."""
    fields: Obj = {"kind": obj["kind"], "name": "", "data": obj.get("data") or ""}
    if obj["kind"] == "Secret":
        fields["type"] = obj.get("type", "Opaque")
    encoded = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    # Go's encoding/json escapes these three for HTML safety.
    encoded = encoded.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _merge(base: Any, patch: Any, key: str = "") -> Any:
    """Strategic merge of `patch` onto `base` (returns a new value)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        if "$patch" in patch or any(k.startswith("$") for k in patch):
            raise Unsupported(f"patch directives in {key}")
        merged = copy.deepcopy(base)
        for k, v in patch.items():
            if v is None:
                merged.pop(k, None)
            elif k in merged:
                merged[k] = _merge(merged[k], v, k)
            else:
                merged[k] = copy.deepcopy(v)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        # The patch's items first, in its order (merged with the base's item of the same
        # key), then the base's other items: the order kustomize's merge produces.
        mk = MERGE_KEYS[key]
        by_key = {item.get(mk): item for item in base}
        merged_list = [
            _merge(by_key[item.get(mk)], item, key)
            if item.get(mk) in by_key
            else copy.deepcopy(item)
            for item in patch
        ]
        patched = {item.get(mk) for item in patch}
        merged_list += [copy.deepcopy(i) for i in base if i.get(mk) not in patched]
        return merged_list
    return copy.deepcopy(patch)


def _containers(pod: Obj) -> list[Obj]:
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _set_image(pod: Obj, image: Obj) -> None:
    for container in _containers(pod):
        ref: str = container["image"]
        name, _, tag = ref.partition("@") if "@" in ref else ref.rpartition(":")
        if not name or "/" in tag:  # no tag at all: "a/b" or "host:5000/a"
            name, tag = ref, ""
        if name != image["name"]:
            continue
        new = image.get("newName", name)
        tag = image.get("newTag", tag)
        container["image"] = f"{new}:{tag}" if tag else new


def _rename_references(pod: Obj, renames: dict[tuple[str, str], str]) -> None:
    def swap(holder: Obj | None, kind: str, field: str = "name") -> None:
        if holder is not None and (kind, holder.get(field)) in renames:
            holder[field] = renames[(kind, holder[field])]

    for container in _containers(pod):
        for source in container.get("envFrom", []):
            swap(source.get("configMapRef"), "ConfigMap")
            swap(source.get("secretRef"), "Secret")
        for env in container.get("env", []):
            value_from = env.get("valueFrom", {})
            swap(value_from.get("configMapKeyRef"), "ConfigMap")
            swap(value_from.get("secretKeyRef"), "Secret")
    for volume in pod.get("volumes", []):
        swap(volume.get("configMap"), "ConfigMap")
        swap(volume.get("secret"), "Secret", "secretName")
