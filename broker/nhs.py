"""NHS numbers: the Modulus 11 check, and synthetic numbers for tests.

An NHS number is ten digits; the tenth is a check digit over the first nine
(weights 10 down to 2, ``11 - sum % 11``, where 11 means 0 and 10 means the
number cannot be valid). Spaces are stripped on input. Synthetic numbers for
tests, scenarios and benchmarks come from the 999 range, which the NHS never
issues to a real person.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator

__all__ = [
    "check_digit",
    "is_valid_nhs_number",
    "normalise_nhs_number",
    "synthetic_nhs_number",
    "synthetic_nhs_numbers",
]

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_DIGIT_ZERO_TOTAL = ord("0") * sum(_WEIGHTS)  # the weighted sum of the digits' ASCII codes, less this


def normalise_nhs_number(raw: str) -> str:
    """The number with spaces removed (``"999 291 4173"`` -> ``"9992914173"``)."""
    return raw.replace(" ", "")


def check_digit(first_nine: str) -> int | None:
    """The Modulus 11 check digit for nine digits, or None when none is possible."""
    if len(first_nine) != 9 or not first_nine.isascii() or not first_nine.isdigit():
        raise ValueError("check_digit takes exactly nine ASCII digits")
    total: int = sum(map(operator.mul, first_nine.encode(), _WEIGHTS)) - _DIGIT_ZERO_TOTAL
    digit = 11 - total % 11
    if digit == 11:
        return 0
    if digit == 10:
        return None
    return digit


def is_valid_nhs_number(raw: str) -> bool:
    """True when ``raw`` (spaces allowed) is ten digits with a valid Modulus 11 check digit."""
    number = normalise_nhs_number(raw)
    if len(number) != 10 or not number.isascii() or not number.isdigit():
        return False
    return check_digit(number[:9]) == int(number[9])


def synthetic_nhs_numbers() -> Iterator[str]:
    """Every valid synthetic NHS number in the 999 range, in ascending order."""
    for body in range(1_000_000):
        first_nine = f"999{body:06d}"
        digit = check_digit(first_nine)
        if digit is not None:
            yield f"{first_nine}{digit}"


_SYNTHETIC: list[str] = []
_SYNTHETIC_SOURCE = synthetic_nhs_numbers()


def synthetic_nhs_number(index: int) -> str:
    """The ``index``-th valid synthetic NHS number (distinct indices give distinct numbers)."""
    if not 0 <= index < 800_000:
        raise ValueError("index must be between 0 and 799999")
    if index >= len(_SYNTHETIC):  # extended once, then a list lookup
        _SYNTHETIC.extend(itertools.islice(_SYNTHETIC_SOURCE, index + 1 - len(_SYNTHETIC)))
    return _SYNTHETIC[index]
