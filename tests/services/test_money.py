import pytest

from app.services.money import MoneyFormatError, format_wan, format_yuan, parse_yuan, price_per


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("12.8", 1280),
        ("12.80", 1280),
        ("0.01", 1),
        ("¥1,234.50", 123450),
        ("58元", 5800),
        (" 7 ", 700),
        ("￥3", 300),
        ("530000", 53000000),
        ("１２．５", 1250),
    ],
)
def test_parse_yuan_reads_what_people_type(text, fen):
    assert parse_yuan(text) == fen


@pytest.mark.parametrize("text", ["-1", "1.234", "abc", "", "1e3", "12.8.1", "NaN", "٣", "1 2"])
def test_parse_yuan_refuses_negative_overprecise_and_non_numbers(text):
    with pytest.raises(MoneyFormatError):
        parse_yuan(text)


@pytest.mark.parametrize("fen", [0, 1, 99, 100, 1280, 123450, 53000000])
def test_formatting_and_parsing_round_trip(fen):
    assert parse_yuan(format_yuan(fen)) == fen


def test_format_yuan_shows_two_decimals_and_thousands():
    assert format_yuan(1280) == "¥12.80"
    assert format_yuan(123450) == "¥1,234.50"
    assert format_yuan(-1200) == "-¥12.00"


def test_large_sums_read_in_wan_yuan():
    assert format_wan(53_000_000) == "53.00万元"
    assert format_wan(12_345_678) == "12.35万元"
    assert format_wan(0) == "0.00万元"


def test_price_per_jin_of_a_250_gram_box():
    assert price_per(5800, 250, 500) == 11600
    # 1/3 fen rounds half up to the nearest fen.
    assert price_per(1000, 3, 1) == 333
