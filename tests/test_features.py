import numpy as np
import pytest

from lstmviz.core.errors import LstmvizError
from lstmviz.text.features import compute_features, document_tracks, parse_feature_option


def marks(text, track):
    """The characters of ``text`` where ``track`` is on."""
    return "".join(ch for ch, v in zip(text, track, strict=True) if v)


CODE = 'x = "it\'s"  # a "quoted" comment\ny = \'esc\\\'aped\'\ns = """doc\nstring"""\n\tif (a[0]):\n        pass\n\n'


@pytest.mark.parametrize("name", ["m.py", "m.txt"])  # tokenize, then the heuristic scanner
def test_strings_comments_and_docstrings(name):
    tracks, method = document_tracks(CODE, name)
    assert method == ("tokenize" if name.endswith(".py") else "heuristic")
    assert marks(CODE, tracks["in_string"]) == "\"it's\"'esc\\'aped'"  # quotes included, escapes respected
    assert marks(CODE, tracks["in_comment"]) == '# a "quoted" comment'  # quotes inside a comment are not strings
    assert marks(CODE, tracks["in_docstring"]) == '"""doc\nstring"""'


def test_line_tracks():
    tracks, _ = document_tracks(CODE, "m.py")
    tab_line = CODE.index("\tif")
    line_len = len("\tif (a[0]):")
    assert tracks["indent"][tab_line] == 8  # a tab counts to the next multiple of 8
    assert tracks["indent"][tab_line + line_len + 1] == 8  # "        pass"
    blank = CODE.index("\n\n") + 1
    assert tracks["indent"][blank] == 0  # blank lines have no indentation
    assert tracks["column"][tab_line : tab_line + 3].tolist() == [0, 1, 2]
    assert tracks["to_eol"][tab_line + line_len] == 0  # the newline itself
    assert tracks["column"][0] == 0 and tracks["to_eol"][0] == CODE.index("\n")


def test_bracket_depth_agrees_between_methods():
    text = "f(a, [1, (2)], {'k': ')'})\n"
    py, _ = document_tracks(text, "m.py")
    heur, _ = document_tracks(text, "m.txt")
    np.testing.assert_array_equal(py["bracket_depth"], heur["bracket_depth"])
    assert py["bracket_depth"][text.index("2")] == 3
    assert py["bracket_depth"][text.index("')'") + 1] == 2  # a bracket inside a string does not count


def test_python_that_does_not_tokenize_falls_back():
    tracks, method = document_tracks('s = "unterminated\n  x = (1,\n', "broken.py")
    assert method == "heuristic"
    assert tracks["in_string"][4] == 1


def test_regex_features_and_user_functions():
    text = "def f():\n    return 1\n"
    name, fn = parse_feature_option("ret=return \\d")
    feats = compute_features(text, [("a.py", 0, len(text))], extra={name: fn, "vowel": lambda t: [c in "aeiou" for c in t]})
    assert marks(text, feats["ret"]) == "return 1"
    assert feats.is_binary("ret") and feats.is_binary("vowel")
    for bad in ("noequals", "1x=a", "x=(", "x="):
        with pytest.raises(LstmvizError):
            name, fn = parse_feature_option(bad)
            fn("text")


def test_unknown_feature_name():
    with pytest.raises(LstmvizError, match="Unknown feature"):
        compute_features("x", [("a", 0, 1)], names=["nope"])


def test_python_without_a_final_newline_is_tokenized():
    # The tokenizer places the end of such a text one row past the last line.
    tracks, method = document_tracks('x = "abc"', "a.py")
    assert method == "tokenize"
    assert tracks["in_string"].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1]
    tracks, method = document_tracks("# note", "a.py")
    assert method == "tokenize" and tracks["in_comment"].all()
