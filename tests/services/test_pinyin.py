import pytest

from app.pinyin import normalise_query_for_pinyin, pinyin_keys


def test_full_pinyin_and_initials_of_a_product_name():
    full, initials, _keys = pinyin_keys("灯影牛肉")
    assert full == "dengyingniurou"
    assert initials == "dynr"


@pytest.mark.parametrize(
    "typed", ["dengying", "dynr", "dyniurou", "dengyingnr", "niurou", "yingniu"]
)
def test_what_people_type_for_dengying_beef_is_in_its_keys(typed):
    _full, _initials, keys = pinyin_keys("灯影牛肉")
    assert typed in keys


def test_latin_letters_and_digits_are_kept_in_keys():
    full, initials, _keys = pinyin_keys("万源菜籽油5L")
    assert full == "wanyuancaiziyou5l"
    assert initials == "wyczy5"


def test_query_spaces_and_apostrophes_are_ignored_for_pinyin():
    assert normalise_query_for_pinyin("Deng Ying") == "dengying"
    assert normalise_query_for_pinyin("xi'an") == "xian"
    assert normalise_query_for_pinyin("%_'\"") == ""


def test_a_query_mixing_initials_and_characters_is_read_as_pinyin():
    assert normalise_query_for_pinyin("dy牛肉") == "dyniurou"
    assert normalise_query_for_pinyin("灯影") == ""  # characters match as characters
