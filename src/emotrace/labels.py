"""The emotion taxonomy: canonical names, dataset class orders and the aliases public datasets use.

Every dataset reader maps its class names through :func:`canonical`, so a folder named ``anger``,
one named ``Angry`` and the FER2013 code ``0`` all land on ``angry``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from emotrace.errors import UnknownLabelError

#: Every emotion emotrace knows, in a fixed order.
CANONICAL: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
    "contempt",
)

#: FER2013's 7 classes in the order of its ``emotion`` codes 0-6.
FER2013_ORDER: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: AffectNet's 8 expression classes in the order of its ``expression`` codes 0-7.
AFFECTNET_ORDER: tuple[str, ...] = (
    "neutral",
    "happy",
    "sad",
    "surprise",
    "fear",
    "disgust",
    "angry",
    "contempt",
)

#: RAF-DB's 7 basic classes in the order of its label codes, which start at 1 (1 surprise ... 7
#: neutral): see :data:`RAFDB_FIRST_CODE`.
RAFDB_ORDER: tuple[str, ...] = ("surprise", "fear", "disgust", "happy", "sad", "angry", "neutral")
RAFDB_FIRST_CODE = 1

#: AffectNet codes that carry no usable expression (none, uncertain, no face).
AFFECTNET_DROPPED_CODES: frozenset[int] = frozenset({8, 9, 10})

_ALIASES: dict[str, str] = {
    # angry
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    # disgust
    "disgust": "disgust",
    "disgusted": "disgust",
    "disgusting": "disgust",
    # fear
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    # happy
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "smile": "happy",
    # sad
    "sad": "sad",
    "sadness": "sad",
    # surprise
    "surprise": "surprise",
    "surprised": "surprise",
    # neutral
    "neutral": "neutral",
    "calm": "neutral",
    # contempt
    "contempt": "contempt",
    "contemptuous": "contempt",
}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_").replace(" ", "_")


def canonical(
    name: str | int, numeric_order: Sequence[str] = FER2013_ORDER, first_code: int = 0
) -> str:
    """Return the canonical emotion for a dataset's class name or numeric code.

    Numeric codes (``3`` or ``"3"``) are read in ``numeric_order``, whose first class has code
    ``first_code`` (FER2013's order from 0 by default; pass :data:`AFFECTNET_ORDER` for AffectNet,
    :data:`RAFDB_ORDER` from 1 for RAF-DB). Names are matched case-insensitively against the
    aliases public datasets use. Raises :class:`UnknownLabelError` listing the known names
    otherwise.
    """
    if isinstance(name, int) or (isinstance(name, str) and name.strip().isdigit()):
        code = int(name)
        if 0 <= code - first_code < len(numeric_order):
            return numeric_order[code - first_code]
        raise UnknownLabelError(
            f"unknown emotion code {code}: expected {first_code}-"
            f"{first_code + len(numeric_order) - 1} ({', '.join(numeric_order)})"
        )
    key = _normalise(name)
    if key in _ALIASES:
        return _ALIASES[key]
    # CK+ style prefixes such as "S005_anger" are not class names; keep the error explicit.
    raise UnknownLabelError(
        f"unknown emotion class {name!r}: expected one of {', '.join(CANONICAL)} "
        "(or an alias such as anger, sadness, happiness)"
    )


def is_known(name: str) -> bool:
    """True when ``name`` maps to a canonical emotion."""
    return _normalise(name) in _ALIASES


def ordered(classes: Iterable[str]) -> list[str]:
    """Sort canonical class names in the taxonomy's fixed order (FER2013 order, contempt last)."""
    present = set(classes)
    unknown = present.difference(CANONICAL)
    if unknown:
        raise UnknownLabelError(f"not canonical emotion names: {', '.join(sorted(unknown))}")
    return [c for c in CANONICAL if c in present]
