"""The one place rolegen parses and emits YAML: libyaml (C) when PyYAML has it, the same results either way.

Loading gives JSON data only: string keys, duplicate keys refused, timestamps kept as the string written
(`2026-11-26` is a date to PyYAML but a string to Patroni, Helm and JSON), and tags with no JSON form
(`!!binary`, `!!set`, `!!omap`, `!!pairs`) refused with their line. A document the C parser refuses is parsed
again by the pure-Python one, so syntax errors read exactly as they always have.

Dumping uses libyaml's emitter only for data it writes byte for byte as PyYAML's emitter does (checked by a
seeded differential test): libyaml escapes characters outside the BMP and writes line breaks other than
`\n` and an empty key differently, so data holding those goes through PyYAML's emitter. Generated files do
not depend on libyaml.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

try:
    from yaml import CSafeDumper as _FastDumper
    from yaml import CSafeLoader as _FastLoader
except ImportError:  # PyYAML built without libyaml: identical output, only slower
    from yaml import SafeDumper as _FastDumper  # type: ignore[assignment]
    from yaml import SafeLoader as _FastLoader  # type: ignore[assignment]

LIBYAML: bool = yaml.__with_libyaml__

_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_NOT_JSON = ("binary", "set", "omap", "pairs")
# Characters libyaml's emitter writes differently from PyYAML's: line breaks other than \n, surrogates, and
# characters beyond the BMP.
_EMITTERS_DIFFER = re.compile("[\r\x85\u2028\u2029\ud800-\udfff\U00010000-\U0010ffff]")


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
    loader.flatten_mapping(node)
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = str(loader.construct_object(key_node, deep=True))
        if key in result:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    return str(loader.construct_scalar(node))


def _refuse(loader: yaml.SafeLoader, node: yaml.Node) -> None:
    raise yaml.constructor.ConstructorError(
        None, None, f"tag {node.tag.replace('tag:yaml.org,2002:', '!!')} has no JSON form; write a plain value",
        node.start_mark,
    )


class FastLoader(_FastLoader):
    """libyaml's parser (when PyYAML has it) with rolegen's constructors."""


class PythonLoader(yaml.SafeLoader):
    """PyYAML's own parser with the same constructors: its error messages are the ones users know."""


for _loader in (FastLoader, PythonLoader):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
    _loader.add_constructor(_TIMESTAMP, _construct_timestamp)
    for _tag in _NOT_JSON:
        _loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _refuse)


def load(text: str) -> Any:
    """Parse one YAML document (see the module docstring); raises yaml.YAMLError as PyYAML's own parser does."""
    try:
        return yaml.load(text, Loader=FastLoader)
    except yaml.YAMLError:
        if not LIBYAML:
            raise
    return yaml.load(text, Loader=PythonLoader)  # the same error, in PyYAML's words


def dump(data: Any) -> str:
    """Block YAML, keys sorted, no line folding: the form of every generated file."""
    dumper = _FastDumper if _emitters_agree(data) else yaml.SafeDumper
    return yaml.dump(data, Dumper=dumper, sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 16)


def _emitters_agree(data: Any) -> bool:
    """True when libyaml's emitter writes `data` exactly as PyYAML's does (see the module docstring)."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _EMITTERS_DIFFER.search(item):
                return False
        elif isinstance(item, dict):
            if "" in item:  # PyYAML writes an empty key as `? ''`, libyaml as `'':`
                return False
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
