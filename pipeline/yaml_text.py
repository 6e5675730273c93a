"""YAML as the configs are read: ``yaml.SafeLoader`` with YAML 1.2 numbers, dates left as text,
a key written twice refused, and numbers that remember how they were written.

Used by :mod:`pipeline.config`; :func:`parse` reads a file's text or one ``--set`` value, and
:func:`plain` turns the remembered numbers back into plain ``int`` and ``float``.
"""
from __future__ import annotations

import re

import yaml


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that leaves dates as text, so a bad date is reported by its key."""


# Numbers as YAML 1.2 reads them. YAML 1.1 (PyYAML) reads 010 as octal 8, 1:30 as 90 (base 60)
# and 2014_12 as 201412, and ``1e7`` (no dot, no exponent sign) as text: each a silent surprise.
_NUMBERS = ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _NUMBERS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:int", re.compile(r"^[-+]?(?:[0-9]+|0x[0-9a-fA-F]+)$"),
                              list("-+0123456789"))
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."))


class _WrittenInt(int):
    """A YAML integer written in a form that ``str()`` does not give back (``010``, ``+5``, ``0x1F``):
    a text setting takes it as written, so ``name: 010`` is the run ``010`` and ``benchmark: 000300``
    the code ``000300``, not ``10`` and ``300``."""


class _WrittenFloat(float):
    """The same for a YAML float (``1.50``, ``1e3``)."""


def _written(number, text: str):
    if str(number) == text:
        return number
    out = (_WrittenInt if isinstance(number, int) else _WrittenFloat)(number)
    out.text = text
    return out


def plain(value):
    """``value`` with every written number made a plain int or float (what YAML dumps)."""
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, _WrittenInt):
        return int(value)
    return float(value) if isinstance(value, _WrittenFloat) else value


_Loader.add_constructor("tag:yaml.org,2002:int", lambda loader, node: (
    lambda text: _written(int(text, 16) if "x" in text else int(text, 10), text))(loader.construct_scalar(node)))
_Loader.add_constructor("tag:yaml.org,2002:float", lambda loader, node: _written(
    yaml.SafeLoader.construct_yaml_float(loader, node), loader.construct_scalar(node)))


def _mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    # A key written twice would keep its last value without a word (a second 'train:' section
    # replaced the first one whole).
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key '{key}' appears twice in one mapping (lines {seen[key] + 1} and "
                f"{key_node.start_mark.line + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)


def parse(text: str):
    """The YAML document in ``text`` (raises ``yaml.YAMLError`` with the line of a mistake)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 -- a SafeLoader subclass
