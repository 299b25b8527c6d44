"""Strict YAML loading for search specs.

PyYAML implements YAML 1.1, whose traps cost real runs: `1e-3` is the *string* "1e-3" (its
float pattern needs a dot), `yes/no/on/off` are booleans, `010` is octal 8, `1:30` is 90, and a
duplicated key silently keeps the last value. This loader is a SafeLoader with the YAML 1.2 core
schema for scalars, duplicate-key and tag checks, and caps on size and alias expansion.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from search.spec.problems import Problem, SpecError, join_loc, show

MAX_BYTES = 1 << 20
# Aliases share nodes, so a 1 KiB file can expand to 10^9 values ("billion laughs").
MAX_NODES = 100_000
_CORE = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}

_BOOL = re.compile(r"^(?:true|false)$", re.IGNORECASE)
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?
                        |[-+]?[0-9]+[eE][-+]?[0-9]+
                        |[-+]?\.(?:inf|Inf|INF)
                        |\.(?:nan|NaN|NAN))$""", re.VERBOSE)
_REPLACED = {_CORE + t for t in ("bool", "int", "float", "timestamp")}


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core scalars: only true/false are booleans, 1e-3 is a float,
    dates stay strings (they would not survive JSON for MLflow)."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _REPLACED]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = self.construct_scalar(node)
        if not _INT.match(text):
            raise yaml.constructor.ConstructorError(
                None, None, f"{text!r} is not a YAML 1.2 integer", node.start_mark)
        if text[:2] in ("0o", "0x"):
            return int(text[2:], 8 if text[1] == "o" else 16)
        return int(text, 10)  # YAML 1.2: a leading zero is decimal, not octal

    def construct_yaml_bool(self, node: ScalarNode) -> bool:
        text = self.construct_scalar(node)
        if not _BOOL.match(text):
            raise yaml.constructor.ConstructorError(
                None, None, f"{text!r} is not a boolean; write true or false", node.start_mark)
        return text.lower() == "true"


StrictLoader.add_implicit_resolver(_CORE + "bool", _BOOL, list("tTfF"))
StrictLoader.add_implicit_resolver(_CORE + "float", _FLOAT, list("-+.0123456789"))
StrictLoader.add_implicit_resolver(_CORE + "int", _INT, list("-+0123456789"))
StrictLoader.add_constructor(_CORE + "int", StrictLoader.construct_yaml_int)
StrictLoader.add_constructor(_CORE + "bool", StrictLoader.construct_yaml_bool)


def load_yaml(path: str | os.PathLike) -> dict:
    """Read and strictly parse a spec file; every failure is a SpecError naming the file."""
    source = str(path)
    try:
        size = Path(path).stat().st_size
        _check_size(size, source)
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise SpecError.one("", source, f"file {source!r} does not exist", source) from None
    except IsADirectoryError:
        raise SpecError.one("", source, f"{source!r} is a directory, not a YAML file",
                            source) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError.one("", None, f"file is not UTF-8 text (byte {err.start})",
                            source) from None
    return parse_yaml(text, source)


def parse_yaml(text: str, source: str = "<spec>") -> dict:
    """Parse spec text: a mapping at the top, or a SpecError (syntax with line and column)."""
    _check_size(len(text.encode("utf-8")), source)
    loader = None
    try:
        loader = StrictLoader(text)
        node = loader.get_single_node()
        if node is None or node.tag == _CORE + "null":
            raise SpecError.one("", None, "the spec is empty; it must be a mapping with at least "
                                "name, data and budget", source)
        problems: list[Problem] = []
        _walk(node, "", {}, set(), problems)
        if problems:
            raise SpecError(problems, source)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        raise SpecError.one("", None, _syntax_message(err), source) from None
    except yaml.reader.ReaderError as err:
        line = text.count("\n", 0, err.position) + 1
        raise SpecError.one("", chr(err.character), f"character {chr(err.character)!r} at line "
                            f"{line} is not allowed: YAML refuses control characters",
                            source) from None
    except ValueError as err:  # an explicit tag on a value it cannot hold: !!float abc
        raise SpecError.one("", None, f"YAML value error: {err}", source) from None
    except RecursionError:
        raise SpecError.one("", None, "the YAML is nested too deeply", source) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise SpecError.one("", data, f"the top level is {show(data)} ({type(data).__name__}) "
                            "but must be a mapping of sections (name, data, budget, ...)", source)
    return data


def _check_size(size: int, source: str) -> None:
    if size > MAX_BYTES:
        raise SpecError.one("", size, f"the file is {size} bytes ({size / MAX_BYTES:.1f} MiB) "
                            f"but must be at most {MAX_BYTES} bytes (1 MiB)", source)


def _syntax_message(err: yaml.MarkedYAMLError) -> str:
    mark = err.problem_mark or err.context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    what = "; ".join(str(p) for p in (err.context, err.problem) if p)
    return f"YAML error{where}: {what}"


def _walk(node: Node, loc: str, sizes: dict[int, int], active: set[int],
          problems: list[Problem]) -> int:
    """Check tags, keys and alias expansion before anything is constructed; returns the number
    of values the node expands to (memoised per node, so the walk is linear in the file)."""
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in active:
        problems.append(Problem(loc, None, "an alias refers to its own anchor (recursive data)"))
        return 0
    if node.tag not in _ALLOWED_TAGS:
        problems.append(Problem(loc, node.tag, f"tag {node.tag!r} at line "
                                f"{node.start_mark.line + 1} is refused: a config holds plain "
                                "values only and may only use registry names"))
        return 1
    active.add(id(node))
    size = 1
    if isinstance(node, MappingNode):
        size += _walk_mapping(node, loc, sizes, active, problems)
    elif isinstance(node, SequenceNode):
        size += sum(_walk(item, join_loc(loc, i), sizes, active, problems)
                    for i, item in enumerate(node.value))
    active.discard(id(node))
    sizes[id(node)] = size
    if len(active) == 0 and size > MAX_NODES:
        problems.append(Problem(loc, size, f"the spec expands to {size} values through YAML "
                                f"aliases but must stay below {MAX_NODES}"))
    return size


def _walk_mapping(node: MappingNode, loc: str, sizes: dict[int, int], active: set[int],
                  problems: list[Problem]) -> int:
    seen: dict[tuple[str, str], int] = {}
    size = 0
    for key, value in node.value:
        line = key.start_mark.line + 1
        if key.tag == _CORE + "merge":
            size += _walk(value, loc, sizes, active, problems)
            continue
        if not isinstance(key, ScalarNode) or key.tag not in _ALLOWED_TAGS:
            problems.append(Problem(loc, None, f"the key at line {line} must be a plain name, "
                                    "not a list, mapping or tagged value"))
            continue
        path = join_loc(loc, key.value)
        if key.value == "_target_":
            problems.append(Problem(path, key.value, "'_target_' at line "
                                    f"{line} is refused: no import paths; a config may only "
                                    "use registry names"))
        if (key.tag, key.value) in seen:
            problems.append(Problem(path, key.value, f"duplicate key {key.value!r} at lines "
                                    f"{seen[key.tag, key.value]} and {line}; YAML would keep "
                                    "only the last one"))
        seen[key.tag, key.value] = line
        size += _walk(value, path, sizes, active, problems)
    return size
