from __future__ import annotations

import pytest

from emotrace.errors import UnknownLabelError
from emotrace.labels import (
    AFFECTNET_ORDER,
    CANONICAL,
    FER2013_ORDER,
    RAFDB_FIRST_CODE,
    RAFDB_ORDER,
    canonical,
    is_known,
    ordered,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("anger", "angry"),
        ("Angry", "angry"),
        ("ANGRY ", "angry"),
        ("sadness", "sad"),
        ("happiness", "happy"),
        ("Surprised", "surprise"),
        ("fearful", "fear"),
        ("contempt", "contempt"),
        ("disgusted", "disgust"),
        ("neutral", "neutral"),
        (0, "angry"),
        ("3", "happy"),
        (6, "neutral"),
    ],
)
def test_aliases_and_codes_map_to_canonical(raw: str | int, expected: str) -> None:
    assert canonical(raw) == expected


def test_rafdb_codes_start_at_1() -> None:
    assert [canonical(i, RAFDB_ORDER, RAFDB_FIRST_CODE) for i in range(1, 8)] == list(RAFDB_ORDER)
    assert canonical("4", RAFDB_ORDER, 1) == "happy" and canonical(7, RAFDB_ORDER, 1) == "neutral"
    for code in (0, 8):
        with pytest.raises(UnknownLabelError, match=f"unknown emotion code {code}: expected 1-7"):
            canonical(code, RAFDB_ORDER, RAFDB_FIRST_CODE)


def test_affectnet_codes_use_affectnet_order() -> None:
    assert [canonical(i, AFFECTNET_ORDER) for i in range(8)] == list(AFFECTNET_ORDER)
    assert canonical(0, AFFECTNET_ORDER) == "neutral"
    assert canonical(7, AFFECTNET_ORDER) == "contempt"


@pytest.mark.parametrize(
    ("raw", "message"),
    [("bored", "unknown emotion class 'bored'"), (7, "unknown emotion code 7"), ("-1", "unknown")],
)
def test_unknown_names_and_codes_raise_with_the_valid_names(raw: str | int, message: str) -> None:
    with pytest.raises(UnknownLabelError, match=message) as info:
        canonical(raw)
    assert "angry" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_orders_are_consistent_with_the_canonical_set() -> None:
    assert set(FER2013_ORDER) | {"contempt"} == set(CANONICAL)
    assert set(AFFECTNET_ORDER) == set(CANONICAL)
    assert ordered(["neutral", "contempt", "angry", "happy"]) == [
        "angry",
        "happy",
        "neutral",
        "contempt",
    ]
    assert is_known("Sadness") and not is_known("bored")
    with pytest.raises(UnknownLabelError):
        ordered(["anger"])
