"""NHS number checks and synthetic numbers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.nhs import check_digit, is_valid_nhs_number, synthetic_nhs_number, synthetic_nhs_numbers


@pytest.mark.parametrize("number", ["9992914173", "9990080631", "999 291 4173", " 9990080631 "])
def test_known_valid_numbers_pass(number: str) -> None:
    """Numbers from the scenario examples pass, with spaces stripped."""
    assert is_valid_nhs_number(number)


@pytest.mark.parametrize(
    "number", ["9992914174", "999291417", "99929141733", "99929141a3", "", "９９９２９１４１７３"]
)
def test_wrong_numbers_fail(number: str) -> None:
    """A wrong check digit, a wrong length, a letter or non-ASCII digits fail."""
    assert not is_valid_nhs_number(number)


def test_check_digit_ten_means_no_valid_number() -> None:
    """Nine digits whose remainder gives check digit 10 have no valid number."""
    bodies = [f"999{n:06d}" for n in range(200)]
    impossible = [b for b in bodies if check_digit(b) is None]
    assert impossible, "some bodies must have no check digit"
    assert all(not is_valid_nhs_number(b + str(d)) for b in impossible for d in range(10))


def test_synthetic_numbers_are_valid_distinct_and_in_the_999_range() -> None:
    """Synthetic numbers are valid, start with 999, and distinct indices give distinct numbers."""
    numbers = [synthetic_nhs_number(i) for i in range(300)]
    assert len(set(numbers)) == 300
    assert all(n.startswith("999") and is_valid_nhs_number(n) for n in numbers)
    assert numbers[:5] == [n for n, _ in zip(synthetic_nhs_numbers(), range(5), strict=False)]


@given(st.text(alphabet="0123456789", min_size=10, max_size=10))
def test_exactly_one_digit_completes_a_body(number: str) -> None:
    """For any nine digits at most one tenth digit makes a valid number."""
    valid = [d for d in "0123456789" if is_valid_nhs_number(number[:9] + d)]
    assert len(valid) <= 1
