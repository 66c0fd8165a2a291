import pytest

from qifu.engine import uscc

# Test vectors from the domain reference §4.2 (real-format codes that pass the check).
VALID = ["91350100M000100Y43", "91230184MA1BUFLT44", "92371000MA3MXH0E3W", "911201166630834097", "91512081MA62K0260E"]


@pytest.mark.parametrize("code", VALID)
def test_published_vectors_are_valid(code):
    assert uscc.problem(code) is None
    assert uscc.check_char(code[:17]) == code[17]


def test_worked_example_check_character_is_3():
    assert uscc.check_char("91350100M000100Y4") == "3"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("91350100M000100Y4Z", "统一社会信用代码只能由数字和大写字母组成（不含I、O、S、V、Z）"),
        ("91350100M000100Y44", "统一社会信用代码校验位错误：第18位应为3"),
        ("91350100M000100Y4", "统一社会信用代码应为18位，实际为17位"),
        ("91350100MO00100Y43", "统一社会信用代码只能由数字和大写字母组成（不含I、O、S、V、Z）"),
    ],
)
def test_invalid_codes_name_the_reason(code, reason):
    assert uscc.problem(code) == reason


def test_full_width_input_is_normalised_but_o_is_not_read_as_zero():
    assert uscc.normalise("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"
    assert "O" in uscc.normalise("91350100MO00100Y43")


def test_weights_follow_powers_of_three_mod_31():
    assert uscc.WEIGHTS == [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
