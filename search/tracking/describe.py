"""The parent run's description (MLflow shows it as Markdown above the run): what the search
was, how it ended, and which trial won with what. Pure functions of plain data: the resolved
spec the parent run stores (`spec.json`) and the winner as the launch reports it."""

from __future__ import annotations

from typing import Any, Mapping, Optional


def number(value: Any) -> str:
    """A value as people read it in a sentence: 0.0001 as 0.0001, 2.0 as 2, 1e-05 as 1e-05."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:.4g}"


def distribution(param: Mapping[str, Any]) -> str:
    """One `space:` entry as the resolved spec stores it, e.g. "float in [0.01, 2], log scale,
    when residual = scaled"."""
    kind = next((k for k in ("float", "int", "choice") if k in param), None)
    if kind == "choice":
        text = "one of " + ", ".join(number(c) for c in param["choice"])
    elif kind is not None:
        low, high = param[kind]
        text = f"{kind} in [{number(low)}, {number(high)}]"
        if param.get("log"):
            text += ", log scale"
        if param.get("step") is not None:
            text += f", step {number(param['step'])}"
    else:
        text = str(dict(param))
    conditions = " and ".join(f"{parent} = {' or '.join(number(v) for v in values)}"
                              for parent, values in (param.get("when") or {}).items())
    return f"{text}, when {conditions}" if conditions else text


def _options(section: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    shown = [f"{k.replace('_', ' ')} {number(section[k])}" for k in keys
             if section.get(k) is not None]
    return f" ({', '.join(shown)})" if shown else ""


def search_text(spec: Mapping[str, Any]) -> str:
    """One sentence: the budget, the data, the objective, the sampler and the scheduler. Any
    part the spec lacks is left out (the parent run's params stand in for an unreadable
    spec.json)."""
    budget = spec.get("budget") or {}
    parts = []
    if budget.get("trials"):
        parts.append(f"{budget['trials']} trials of at most {budget.get('max_epochs', '?')} "
                     "epochs")
    if (spec.get("data") or {}).get("dataset"):
        parts.append(f"on {spec['data']['dataset']}")
    raw = spec.get("objective") or []
    objectives = [o for o in (raw if isinstance(raw, list) else [raw])
                  if isinstance(o, dict) and o.get("metric")]
    said = ", ".join(f"{o['metric']} ({o.get('mode', '?')})" for o in objectives)
    if objectives:
        parts.append(f"objective{'s' if len(objectives) > 1 else ''} {said}")
    sampler, scheduler = spec.get("sampler") or {}, spec.get("scheduler") or {}
    if sampler.get("type"):
        parts.append(f"sampler {sampler['type']}{_options(sampler, ('seed',))}")
    if scheduler.get("type"):
        parts.append(f"scheduler {scheduler['type']}"
                     f"{_options(scheduler, ('grace_period', 'reduction_factor'))}")
    return ", ".join(parts)


def space_lines(space: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One Markdown bullet per parameter of the space, in the spec's order."""
    return [f"- `{name}`: {distribution(param)}" for name, param in space.items()]


def winner_text(metric: str, best: Mapping[str, Any], name: Optional[str] = None,
                epochs: Optional[str] = None, link: Optional[str] = None) -> str:
    """"t005 onecycle/scaled (trial ab12cd34) with val_acc = 0.9413 after 3 epochs: lr=0.12,
    residual=scaled"; the name a Markdown link to `link` (the winner's run) when given."""
    shown = f"[{name}]({link})" if name and link else name
    who = f"{shown} (trial {best['trial_id']})" if name else f"trial {best['trial_id']}"
    after = f" after {epochs} epoch{'' if str(epochs) == '1' else 's'}" if epochs else ""
    sampled = ", ".join(f"{k}={number(v)}" for k, v in best.get("params", {}).items())
    return (f"{who} with {metric} = {number(best['value'])}{after}"
            f"{': ' + sampled if sampled else ''}")


def note(state: str, spec: Mapping[str, Any], *, reason: Optional[str] = None,
         winner: Optional[str] = None) -> str:
    """The whole description: how the search stands, what it was, its winner, its space."""
    what = search_text(spec)
    why = f" ({reason})" if reason and reason != state else ""
    lines = [f"**Search {state}**{why}.{f' {what}.' if what else ''}"]
    if winner:
        lines += ["", f"**Best:** {winner}."]
    space = spec.get("space") or {}
    if space:
        lines += ["", f"**Space** ({len(space)} parameters):", *space_lines(space)]
    return "\n".join(lines)
