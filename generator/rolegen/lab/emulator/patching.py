"""The four PATCH flavours. Two are exact (JSON merge patch, JSON patch); two are approximations.

* JSON merge patch (RFC 7386): exact.
* JSON patch (RFC 6902) with add/remove/replace/move/copy/test: exact; a failed `test` is a 422.
* Strategic merge patch (approximation): a JSON merge patch, except that lists of objects whose
  Kubernetes merge key is known (`name` for containers/env/volumes/ports..., `mountPath` for
  volumeMounts, `containerPort` for container ports) are merged element by element, and the
  directives `$patch: delete|replace` (in maps and list elements), `$deleteFromPrimitiveList/<k>`
  are honoured; `$setElementOrder/<k>` and `$retainKeys` are dropped. Lists of scalars and lists
  without a known key are replaced, as merge patch does.
* Server-side apply (approximation): the applied configuration is strategic-merged onto the live
  object. There is no field ownership: fields an earlier apply set but a later one omits are kept,
  and no apply conflicts are ever reported (so `--force-conflicts` makes no difference).
"""

from __future__ import annotations

import copy
from typing import Any

# Merge keys by field name, from the Kubernetes API's `patchMergeKey` tags (the ones charts hit).
MERGE_KEYS: dict[str, str] = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "env": "name",
    "volumes": "name", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
    "imagePullSecrets": "name", "hostAliases": "ip", "tolerations": "key",
    "ownerReferences": "uid", "conditions": "type", "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
}
# `ports` is keyed by containerPort in containers and by port in Services.
PORT_KEYS = ("containerPort", "port")


class PatchError(ValueError):
    """The patch cannot be applied. `code` is the HTTP status the server answers with."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for tok in tokens[:-1]:
        if isinstance(node, list):
            node = node[int(tok)]
        elif isinstance(node, dict) and tok in node:
            node = node[tok]
        else:
            raise PatchError(f"path /{'/'.join(tokens)} not found")
    return node


def _get(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for tok in tokens:
        try:
            node = node[int(tok)] if isinstance(node, list) else node[tok]
        except (KeyError, IndexError, ValueError, TypeError):
            raise PatchError(f"path /{'/'.join(tokens)} not found") from None
    return node


def _remove(doc: Any, tokens: list[str]) -> Any:
    parent = _parent(doc, tokens)
    try:
        return parent.pop(int(tokens[-1]) if isinstance(parent, list) else tokens[-1])
    except (KeyError, IndexError, ValueError):
        raise PatchError(f"path /{'/'.join(tokens)} not found") from None


def _add(doc: Any, tokens: list[str], value: Any, replace: bool = False) -> Any:
    if not tokens:
        return copy.deepcopy(value)
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, list):
        idx = len(parent) if last == "-" else int(last)
        if replace:
            parent[idx] = copy.deepcopy(value)
        elif 0 <= idx <= len(parent):
            parent.insert(idx, copy.deepcopy(value))
        else:
            raise PatchError(f"index {idx} out of range")
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"path /{'/'.join(tokens)} not found")
        parent[last] = copy.deepcopy(value)
    else:
        raise PatchError(f"cannot add to a scalar at /{'/'.join(tokens)}")
    return doc


def json_patch(target: Any, ops: Any) -> Any:
    if not isinstance(ops, list):
        raise PatchError("a JSON patch must be a list of operations", 400)
    doc = copy.deepcopy(target)
    for op in ops:
        kind, tokens = op.get("op"), _pointer(op.get("path", ""))
        if kind == "add":
            doc = _add(doc, tokens, op.get("value"))
        elif kind == "remove":
            _remove(doc, tokens)
        elif kind == "replace":
            doc = _add(doc, tokens, op.get("value"), replace=True)
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
            doc = _add(doc, tokens, value)
        elif kind == "test":
            if _get(doc, tokens) != op.get("value"):
                raise PatchError(f"testing value /{'/'.join(tokens)} failed")
        else:
            raise PatchError(f"unknown JSON patch operation {kind!r}", 400)
    return doc


def _merge_key(field: str, items: list[Any]) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    if field == "ports":
        return next((k for k in PORT_KEYS if all(k in i for i in items)), None)
    return MERGE_KEYS.get(field)


def _merge_list(field: str, live: list[Any], patch: list[Any]) -> list[Any]:
    key = _merge_key(field, [*patch, *live]) or _merge_key(field, patch)
    if key is None or not isinstance(live, list):
        return [strategic_merge(None, p) for p in patch if not (isinstance(p, dict) and "$patch" in p)]
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [strategic_merge(None, p) for p in patch if p.get("$patch") != "replace"]
    result = [copy.deepcopy(i) for i in live]
    for p in patch:
        idx = next((n for n, i in enumerate(result) if isinstance(i, dict) and i.get(key) == p.get(key)), None)
        if p.get("$patch") == "delete":
            if idx is not None:
                result.pop(idx)
        elif idx is None:
            result.append(strategic_merge(None, p))
        else:
            result[idx] = strategic_merge(result[idx], p)
    return result


def strategic_merge(live: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "delete":
        return None
    base: dict[str, Any] = {} if patch.get("$patch") == "replace" or not isinstance(live, dict) else dict(live)
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            base[field] = [v for v in base.get(field) or [] if v not in value]
            continue
        if value is None:
            base.pop(key, None)
        elif isinstance(value, list):
            base[key] = _merge_list(key, base.get(key) or [], value)
        else:
            merged = strategic_merge(base.get(key), value)
            if merged is None:
                base.pop(key, None)
            else:
                base[key] = merged
    return base


def server_side_apply(live: dict[str, Any] | None, applied: dict[str, Any]) -> dict[str, Any]:
    """Approximation: see the module docstring. Nulls in an applied configuration mean "unset"."""
    result = strategic_merge(live or {}, applied)
    assert isinstance(result, dict)
    return result
