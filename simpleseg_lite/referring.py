"""Referring expressions that pick exactly one object: by attribute, position, size or relation.

* attribute — "the red triangle", "the star" (colour and/or name; "the shape" only when it is alone);
* position — "the leftmost circle", "the shape at the top";
* size — "the largest circle", "the smallest shape";
* relation — "the circle left of the blue square".

A **rule** is ``(kind, description, word, reference description)``; a description is ``(colour, name)``
with ``None`` meaning "any" (``(None, None)`` is the scene's noun: "shape", "object"). ``valid_rules``
lists every rule of a kind that is unambiguous for a target, ``refer`` draws one and ``expression_text``
writes it in words (``PHRASES``). Objects need ``colour``, ``name``, ``area`` and ``centre`` — the mask
centroid (x, y) in pixel-edge coordinates, y down — as ``data.SceneObject`` has them.

Unambiguous means *by a clear margin*, checked by ``denotes``: a rule is used only if it holds for the
target and, with room to spare, for no other object. Position and relation words compare centroids and
need a lead of ``margin`` (10 % of the image side by default): "the leftmost circle" only when every
other circle's centroid is at least that much further right. "largest"/"smallest" need an area ratio
of ``size_ratio`` (1.5) to the runner-up. A relation's reference must itself be unique in the scene.

Departures from the paper, and why: RefCOCO's expressions are written by people, looser and
viewpoint-dependent; ours are templates with margins so that every synthetic expression is verifiably
unambiguous (and a CPU-sized model is never trained on a coin toss).

Taught in notebooks/04_data.py
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .data import Scene, SceneObject

EXPRESSION_KINDS = ("attribute", "position", "size", "relation")
EXPRESSION_MIX = {"attribute": 1.0, "position": 1.0, "relation": 1.0, "size": 0.5}  # default weights
PHRASES = {  # rule word → phrasings; "{}" is the noun phrase ("red circle", "shape"), then the reference's
    None: ("the {}",),
    "left": ("the leftmost {}", "the {} on the left", "the {} furthest to the left"),
    "right": ("the rightmost {}", "the {} on the right", "the {} furthest to the right"),
    "top": ("the topmost {}", "the {} at the top", "the highest {}"),
    "bottom": ("the bottommost {}", "the {} at the bottom", "the lowest {}"),
    "largest": ("the largest {}", "the biggest {}"),
    "smallest": ("the smallest {}",),
    "left of": ("the {} left of the {}", "the {} to the left of the {}"),
    "right of": ("the {} right of the {}", "the {} to the right of the {}"),
    "above": ("the {} above the {}",),
    "below": ("the {} below the {}",),
}
# (axis, sign): an object's key is sign × centre[axis] / side; the rule's word picks the smallest key
_AXES = {"left": (0, 1), "right": (0, -1), "top": (1, 1), "bottom": (1, -1),
         "left of": (0, 1), "right of": (0, -1), "above": (1, 1), "below": (1, -1)}


def expression_kind(rule) -> str:
    """A rule's kind as the diagnostics group it: ``"position"``, ``"size"``, ``"relation"``, or for attribute rules
    which words name the target — ``"attribute/c"`` (colour alone: "the red shape"), ``"attribute/s"`` (shape
    alone), ``"attribute/cs"`` (both); ``"none"`` for a sample without a rule (RefCOCO)."""
    if rule is None:
        return "none"
    if rule[0] != "attribute":
        return rule[0]
    return "attribute/" + ("c" if rule[1][0] else "") + ("s" if rule[1][1] else "")


def _fits(o: SceneObject, d) -> bool:
    return (d[0] is None or o.colour == d[0]) and (d[1] is None or o.name == d[1])


def denotes(rule, objects, size, margin: float = 0.1, size_ratio: float = 1.5) -> tuple[list, list]:
    """(objects the rule clearly picks, objects it might pick) as index lists, ``size`` = (W, H).
    A rule is unambiguous for object i exactly when both lists are ``[i]``."""
    kind, d, word, d_ref = rule
    cand = [k for k, o in enumerate(objects) if _fits(o, d)]
    if kind == "attribute":
        return cand, cand
    if kind == "size":
        area = {k: objects[k].area for k in cand}
        if word == "largest":
            top = max(area.values(), default=0)
            return [k for k in cand if area[k] == top], [k for k in cand if area[k] * size_ratio > top]
        low = min(area.values(), default=0)
        return [k for k in cand if area[k] == low], [k for k in cand if area[k] < low * size_ratio]
    axis, sign = _AXES[word]
    key = {k: sign * objects[k].centre[axis] / size[axis] for k in cand}
    if kind == "position":
        low = min(key.values(), default=0)
        return [k for k in cand if key[k] == low], [k for k in cand if key[k] < low + margin]
    refs = [k for k, o in enumerate(objects) if _fits(o, d_ref)]
    if len(refs) != 1:  # the reference itself must be unique
        return [], cand
    ref = sign * objects[refs[0]].centre[axis] / size[axis]
    cand = [k for k in cand if k != refs[0]]
    return [k for k in cand if key[k] <= ref - margin], [k for k in cand if key[k] < ref + margin]


def _descriptions(o: SceneObject, use_colour: bool = True, use_shape: bool = True) -> list:
    ds = [(o.colour, o.name), (o.colour, None)] if (use_colour and o.colour) else []
    ds = ds + [(None, o.name), (None, None)]
    return ds if use_shape else [d for d in ds if d[1] is None]


def valid_rules(scene: Scene, target: int, kind: str, margin=0.1, size_ratio=1.5, use_colour=True,
                use_shape=True) -> list:
    """Every rule of ``kind`` that picks exactly ``scene.objects[target]``; ``use_shape = False``: only rules
    whose descriptions name no shape ("the red shape", "the leftmost shape", "the shape above the blue shape")."""
    objs, t = scene.objects, scene.objects[target]
    size = scene.image.shape[1::-1]
    ds = _descriptions(t, use_colour, use_shape)
    count = {d: sum(_fits(o, d) for o in objs) for d in ds}
    if kind == "attribute":
        rules = [(kind, d, None, None) for d in ds if d != (None, None) or len(objs) == 1]
    elif kind in ("position", "size"):
        words = ("left", "right", "top", "bottom") if kind == "position" else ("largest", "smallest")
        rules = [(kind, d, w, None) for d in ds if count[d] >= 2 for w in words]
    else:
        rules = [(kind, d, w, dr) for d in ds for k, o in enumerate(objs) if k != target
                 for dr in _descriptions(o, use_colour, use_shape) for w in ("left of", "right of", "above", "below")]
    good = [r for r in rules if denotes(r, objs, size, margin, size_ratio) == ([target], [target])]
    if kind == "relation":  # prefer relations that are needed: the noun alone matches ≥ 2 non-reference objects
        needed = [r for r in good if sum(_fits(o, r[1]) and not _fits(o, r[3]) for o in objs) >= 2]
        good = needed or good
    return good


def expression_text(rule, noun: str, rng) -> str:
    """Render a rule, e.g. ("relation", (None, "circle"), "left of", ("blue", "square"), "shape") →
    "the circle left of the blue square"."""
    def phrase(d):
        return " ".join(w for w in (d[0], d[1] or noun) if w)
    _, d, word, d_ref = rule
    template = PHRASES[word][rng.integers(len(PHRASES[word]))]
    return template.format(phrase(d), *([phrase(d_ref)] if d_ref else []))


def refer(scene: Scene, target: int, rng, mix=None, margin=0.1, size_ratio=1.5, use_colour=True, use_shape=True):
    """(expression, rule) for ``scene.objects[target]``, the kind drawn from ``mix`` (weights over
    EXPRESSION_KINDS, default ``EXPRESSION_MIX``) among kinds with a valid rule; ``None`` if no rule
    picks the target alone. ``use_colour`` / ``use_shape`` = False: no rule names a colour / a shape."""
    names, p = mix_weights(mix or EXPRESSION_MIX, EXPRESSION_KINDS)
    while names:
        k = rng.choice(len(names), p=p / p.sum())
        rules = valid_rules(scene, target, names[k], margin, size_ratio, use_colour, use_shape)
        if rules:
            rule = rules[rng.integers(len(rules))]
            return expression_text(rule, scene.noun, rng), rule
        names, p = names[:k] + names[k + 1:], np.delete(p, k)
    return None


def mix_weights(weights: dict, allowed, what: str = "kind") -> tuple[list, np.ndarray]:
    """(names with a positive weight, their weights, unnormalized); raises on unknown names or all-zero."""
    unknown = set(weights) - set(allowed)
    if unknown:
        raise ValueError(f"unknown {what} {sorted(unknown)}; expected some of {list(allowed)}")
    names = [k for k in weights if weights[k] > 0]
    if not names:
        raise ValueError(f"no {what} has a positive weight: {weights}")
    return names, np.array([float(weights[k]) for k in names])
