"""Which runs are comparable, and which are repeats: one identity rule for compare, check and plan.

Two runs are of the same configuration when these fields of their RunConfig are equal: model,
signature, kind, batch size, format, mode, concurrency, rate, arrival and protocol (REST or gRPC). Not the model version or
label (comparing versions is what a baseline is for), not the engine, duration or seed (noted,
not refused). Runs of the same configuration on one side are repeats and are pooled (see
`pooling`), never dropped: that is what `--repeat N` produces.

When no configuration matches at all and each side has exactly one model name, the sides are
paired ignoring the model name (comparing model `resnet` with `resnet_v2` is a common question),
and a note says so. Likewise, when each side has runs of one protocol and they differ, the sides are
paired ignoring the protocol (REST vs gRPC of the same payload and load), with a note.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tfsbench.bench.results import RunConfig, RunResult

IDENTITY_FIELDS: tuple[str, ...] = (
    "model",
    "signature",
    "kind",
    "batch_size",
    "format",
    "mode",
    "concurrency",
    "rate_rps",
    "arrival",
    "protocol",
)
_DEFAULTS = {"protocol": "rest"}  # fields older result files may lack


def identity(config: RunConfig, *, with_model: bool = True, with_protocol: bool = True) -> tuple[Any, ...]:
    fields = IDENTITY_FIELDS if with_model else IDENTITY_FIELDS[1:]
    if not with_protocol:
        fields = tuple(f for f in fields if f != "protocol")
    return tuple(getattr(config, f, _DEFAULTS.get(f)) for f in fields)


def config_differences(a: RunConfig, b: RunConfig) -> list[str]:
    """The identity fields in which two configurations differ, as 'field (a vs b)'."""
    out = []
    for f in IDENTITY_FIELDS:
        va, vb = getattr(a, f, _DEFAULTS.get(f)), getattr(b, f, _DEFAULTS.get(f))
        if va != vb:
            out.append(f"{f} ({va!r} vs {vb!r})")
    return out


@dataclass(frozen=True, slots=True)
class Group:
    """The runs of one configuration on one side (one run, or its repeats), in input order."""

    key: tuple[Any, ...]
    runs: tuple[RunResult, ...]

    @property
    def config(self) -> RunConfig:
        return self.runs[0].config

    @property
    def label(self) -> str:
        text = self.config.label_text()
        return text if len(self.runs) == 1 else f"{text} (x{len(self.runs)})"


def group_repeats(runs: Sequence[RunResult], *, with_model: bool = True, with_protocol: bool = True) -> list[Group]:
    """Group runs by configuration, first appearance first."""
    by_key: dict[tuple[Any, ...], list[RunResult]] = {}
    for run in runs:
        by_key.setdefault(identity(run.config, with_model=with_model, with_protocol=with_protocol), []).append(run)
    return [Group(key, tuple(rs)) for key, rs in by_key.items()]


@dataclass(frozen=True, slots=True)
class Pairing:
    pairs: tuple[tuple[Group, Group], ...]  # (a, b)
    only_a: tuple[Group, ...]
    only_b: tuple[Group, ...]
    notes: tuple[str, ...] = ()


def pair_groups(a: Sequence[RunResult], b: Sequence[RunResult], *, rename_model: bool = True) -> Pairing:
    """Pair A's configurations with B's (repeats pooled into groups); see the module docstring.
    `rename_model=False` (check's gate) never pairs runs of differently named models."""
    pairing = _pair(group_repeats(a), group_repeats(b))
    models_a = {r.config.model for r in a}
    models_b = {r.config.model for r in b}
    if rename_model and not pairing.pairs and len(models_a) == 1 and len(models_b) == 1 and models_a != models_b:
        renamed = _pair(group_repeats(a, with_model=False), group_repeats(b, with_model=False))
        if renamed.pairs:
            note = f"different model names paired by configuration: {models_a.pop()} vs {models_b.pop()}"
            return Pairing(renamed.pairs, renamed.only_a, renamed.only_b, (note, *renamed.notes))
    protocols_a = {getattr(r.config, "protocol", "rest") for r in a}
    protocols_b = {getattr(r.config, "protocol", "rest") for r in b}
    if rename_model and not pairing.pairs and len(protocols_a) == 1 and len(protocols_b) == 1 \
            and protocols_a != protocols_b:
        # REST vs gRPC is the question itself: pair one protocol's runs with the other's
        across = _pair(group_repeats(a, with_protocol=False), group_repeats(b, with_protocol=False))
        if across.pairs:
            note = f"protocols paired by configuration: {protocols_b.pop()} vs baseline {protocols_a.pop()}"
            return Pairing(across.pairs, across.only_a, across.only_b, (note, *across.notes))
    return pairing


def _pair(groups_a: list[Group], groups_b: list[Group]) -> Pairing:
    index_b = {g.key: g for g in groups_b}
    pairs: list[tuple[Group, Group]] = []
    only_a: list[Group] = []
    for g in groups_a:
        other = index_b.get(g.key)
        if other is None:
            only_a.append(g)
        else:
            pairs.append((g, other))
    used = {gb.key for _, gb in pairs}
    only_b = [g for g in groups_b if g.key not in used]
    notes: list[str] = []
    for ga, gb in pairs:
        for f in ("version", "label"):
            va, vb = getattr(ga.config, f), getattr(gb.config, f)
            if va != vb:
                notes.append(f"{gb.config.label_text()}: model {f} {vb} vs baseline {va}")
        engines_a = {r.config.engine for r in ga.runs}
        engines_b = {r.config.engine for r in gb.runs}
        if engines_a != engines_b:
            notes.append(f"{gb.config.label_text()}: engines differ ({', '.join(sorted(engines_b))} vs baseline "
                         f"{', '.join(sorted(engines_a))}); latencies may not be comparable")
    return Pairing(tuple(pairs), tuple(only_a), tuple(only_b), tuple(notes))


def closest(config: RunConfig, groups: Sequence[Group]) -> Group | None:
    """The group whose configuration differs from `config` in the fewest identity fields."""
    if not groups:
        return None
    return min(groups, key=lambda g: len(config_differences(config, g.config)))


__all__ = [
    "IDENTITY_FIELDS",
    "Group",
    "Pairing",
    "closest",
    "config_differences",
    "group_repeats",
    "identity",
    "pair_groups",
]
