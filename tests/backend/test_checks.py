"""backend.checks: the integer-in-range check every input goes through, and its texts."""
import pytest

from loyalty.backend import checks, headoffice as ho
from loyalty.protocol.errors import ProtocolError


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None, -1, 11])
def test_integer_refuses_what_is_not_an_int_in_range(value):
    with pytest.raises(checks.CheckFailed) as e:
        checks.integer(value, 0, 10, "qty")
    assert (e.value.field, e.value.rule, str(e.value)) == (
        "qty", "must be an integer from 0 to 10", "qty: must be an integer from 0 to 10")


def test_integer_takes_the_ends_of_its_range():
    assert [checks.integer(v, 0, 10, "qty") for v in (0, 10)] == [0, 10]


@pytest.mark.parametrize("text", ["", " 7", "7 ", "1_000", "²", "٣", "-1", "+1", "1" * 20, None, 7])
def test_digits_takes_ascii_digits_only(text):
    assert checks.digits(text) is None


def test_digits_reads_up_to_nineteen_digits():
    assert (checks.digits("0042"), checks.digits("9" * 19)) == (42, 10 ** 19 - 1)


def test_the_error_class_is_the_callers():
    def fail(field, rule):
        return ProtocolError("delta.format", field, rule)
    with pytest.raises(ProtocolError) as e:
        checks.integer_text("1001", 1, 1000, "limit", fail)
    assert (e.value.code, e.value.field, e.value.detail) == ("delta.format", "limit", "must be an integer from 1 to 1000")


def test_a_card_file_with_a_superscript_tier_is_refused_by_name(db):
    # str.isdigit takes "²" (and int() then failed with a bare ValueError)
    with pytest.raises(ho.InvalidValue) as e:
        ho.import_cards(db, [("6001000000000042", "²")])
    assert "must be an integer from 0 to 255" in str(e.value)
