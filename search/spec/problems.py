"""What a rejected spec looks like: one `Problem` per broken rule, all raised together.

The CLI catches `SpecError` and exits 2 with `str(error)`, so every message must stand alone:
the dotted field path, the offending value and the rule, never a traceback.
"""

from __future__ import annotations

import difflib
import re
import reprlib
import types
import typing
from dataclasses import dataclass
from typing import Any, Iterable

# Bounded repr: a hostile file (alias bombs, megabyte strings) must not blow up the message.
_REPR = reprlib.Repr()
_REPR.maxstring = 80
_REPR.maxother = 80
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 8


# Terminal colour codes: Ray colours the exceptions it wraps; they are noise in a pipe, a log or
# an MLflow tag.
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def show(value: Any) -> str:
    """repr() of a value, cut short for messages."""
    return _REPR.repr(value)


def join_loc(*parts: Any) -> str:
    """Dotted path: strings joined by '.', list indices as '[i]', empty parts skipped."""
    out = ""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out += f"[{part}]"
        elif part not in ("", None):
            text = str(part)
            out = text if not out else out + ("" if text.startswith("[") else ".") + text
    return out


def suggest(word: Any, options: Iterable[Any], what: str = "valid keys") -> str:
    """'; did you mean 'x'?' for a near miss, otherwise the list of valid options."""
    names = [str(o) for o in options]
    close = difflib.get_close_matches(str(word), names, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f"; {what}: {', '.join(names)}" if names else ""


@dataclass
class Problem:
    loc: str        # dotted field path, e.g. "space.lr.float"; "" for the file as a whole
    value: Any      # the offending input
    message: str    # names the value (repr) and the rule
    flag: str = ""  # the command-line flag that gave the value ("--trials"), when one did

    def render(self, source: str) -> str:
        source = f"{source} ({self.flag})" if self.flag else source
        return f"{source}: {self.loc}: {self.message}" if self.loc else f"{source}: {self.message}"


class SpecError(Exception):
    """A spec broke one or more rules; `str()` gives one line per problem."""

    def __init__(self, problems: list[Problem], source: str = "<spec>") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(str(self))

    @classmethod
    def one(cls, loc: str, value: Any, message: str, source: str = "<spec>") -> SpecError:
        return cls([Problem(loc, value, message)], source)

    def __str__(self) -> str:
        return "\n".join(p.render(self.source) for p in self.problems)

    def __reduce__(self) -> tuple:  # survives pickling (Ray ships exceptions between processes)
        return type(self), (self.problems, self.source)


class Problems(ValueError):
    """Several problems found inside one pydantic validator, with paths relative to its field.

    Raised from validators so that pydantic keeps collecting errors in the other fields; the
    converter in `search.spec` expands it back into one Problem per entry.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.loc}: {p.message}" for p in problems))

    def __reduce__(self) -> tuple:
        return type(self), (self.problems,)


# --- pydantic ValidationError -> Problems -----------------------------------------------------

BOOL_HINT = "write true/false; YAML 1.1 words like yes/no/on/off are plain strings here"
_BOUNDS = {"greater_than": (">", "gt"), "greater_than_equal": (">=", "ge"),
           "less_than": ("<", "lt"), "less_than_equal": ("<=", "le")}
_TYPES = {"int_type": "an integer", "int_from_float": "an integer", "int_parsing": "an integer",
          "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
          "bool_parsing": "true or false", "string_type": "a string", "dict_type": "a mapping",
          "model_type": "a mapping", "model_attributes_type": "a mapping",
          "list_type": "a list", "tuple_type": "a list", "none_required": "null"}


def problems_from(err: Any, root: type, prefix: str = "") -> list[Problem]:
    """One Problem per pydantic error of `err` (a ValidationError raised validating `root`),
    with dotted paths (discriminator tags left out) and Optuna-style messages."""
    out: list[Problem] = []
    for e in err.errors():
        loc = tuple(e["loc"])
        shown, _ = _resolve(root, loc)
        where = join_loc(prefix, *shown)
        inner = (e.get("ctx") or {}).get("error")
        if isinstance(inner, Problems):
            out += [Problem(join_loc(where, p.loc), p.value, p.message) for p in inner.problems]
        elif e["type"].startswith("union_tag"):
            _, union = _resolve(root, loc)
            out.append(Problem(join_loc(where, "type"), e["input"], _tag_message(e, union)))
        else:
            _, parent = _resolve(root, loc[:-1])
            out.append(Problem(where, e.get("input"), _message(e, shown, parent)))
    return out


def _message(e: dict, shown: list, parent: Any) -> str:
    kind, ctx, value = e["type"], e.get("ctx") or {}, e.get("input")
    leaf = next((p for p in reversed(shown) if isinstance(p, str)), "the spec")
    got = f"{leaf} is {show(value)}"
    if kind == "missing":
        return f"{leaf} is required but missing"
    if kind == "extra_forbidden":
        return f"unknown key {leaf!r}" + suggest(leaf, _keys(parent))
    if kind in _BOUNDS:
        symbol, key = _BOUNDS[kind]
        bound = ctx[key]
        return f"{got} but must be {symbol} {int(bound) if bound == int(bound) else bound}"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        hint = suggest(value, options) if isinstance(value, str) else ""
        return f"{got} but must be one of {', '.join(options)}" + (
            hint if "did you mean" in hint else "")
    if kind in ("bool_type", "bool_parsing") and isinstance(value, str):
        return f"{got} but must be true or false ({BOOL_HINT})"
    if kind in _TYPES:
        return f"{got} but must be {_TYPES[kind]}"
    if kind == "finite_number":
        return f"{got} but must be finite (no nan or inf)"
    if kind in ("too_short", "too_long"):
        size = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        most = "at least" if kind == "too_short" else "at most"
        return f"{got} but must have {most} {size} items"
    if kind in ("string_too_short", "string_too_long"):
        size = ctx.get("min_length") if kind == "string_too_short" else ctx.get("max_length")
        most = "at least" if kind == "string_too_short" else "at most"
        return f"{got} but must have {most} {size} character{'s' if size != 1 else ''}"
    if kind == "value_error":
        return str(ctx.get("error", e["msg"]))
    return f"{got}: {e['msg']}"


def _tag_message(e: dict, union: Any) -> str:
    tags = _tags(union)
    if e["type"] == "union_tag_not_found":
        return f"type is missing; give one of {', '.join(tags)}"
    tag = (e.get("ctx") or {}).get("tag")
    hint = suggest(tag, tags)
    return f"type is {tag!r} but must be one of {', '.join(tags)}" + (
        hint if "did you mean" in hint else "")


def _strip(ann: Any) -> Any:
    """Annotated[X, ...] -> X; Optional[X] -> X."""
    while typing.get_origin(ann) is typing.Annotated:
        ann = typing.get_args(ann)[0]
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(members) == 1:
            return _strip(members[0])
    return ann


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and hasattr(ann, "model_fields")


def _tag_of(member: Any) -> Any:
    return member.model_fields["type"].default if _is_model(member) and (
        "type" in member.model_fields) else None


def _tags(union: Any) -> list[str]:
    return [t for m in typing.get_args(_strip(union)) if (t := _tag_of(m)) is not None]


def _field(model: Any, key: Any) -> Any:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return info.annotation
    return None


def _resolve(root: type, loc: tuple) -> tuple[list, Any]:
    """Walk an error location through the model tree: (parts to show, annotation reached).
    Discriminator tags in the location ('sampler', 'tpe', 'seed') are consumed, not shown."""
    ann: Any = root
    shown: list = []
    for part in loc:
        ann = _strip(ann)
        origin = typing.get_origin(ann)
        if _is_model(ann):
            ann = _field(ann, part)
        elif origin in (typing.Union, types.UnionType) and part in _tags(ann):
            ann = next(m for m in typing.get_args(ann) if _tag_of(m) == part)
            continue
        elif origin is dict:
            ann = typing.get_args(ann)[1]
        elif origin in (list, tuple) and typing.get_args(ann):
            ann = typing.get_args(ann)[0]
        else:
            ann = None
        shown.append(part)
    return shown, ann


def _keys(model: Any) -> list[str]:
    model = _strip(model)
    if not _is_model(model):
        return []
    return [info.alias or name for name, info in model.model_fields.items()]
