"""Click a character, see why (app/why.py, assets/why.js), in a real headless Chromium on the
tiny model's store: the characters before the click get bars by their contribution to the
unit there, the five that count most are listed (checked against ``lstmviz.attribute``
computed here), the prediction there is shared among the units (checked against the
recorded h times the decoder's weights), and the URL holds the view."""

from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import pytest
import test_dashboard
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import lstmviz
from lstmviz.app.why import chosen_method, clicked_position
from lstmviz.bench.browser import panel_label, severe_console_errors, text_of, texts_of
from lstmviz.core.characters import name_of
from lstmviz.model.checkpoint import load_checkpoint

browser, downloads = test_dashboard.browser, test_dashboard.downloads  # a Chromium of this module's own
server = test_dashboard.server  # and a dashboard on the tiny model's store

NEURON, START = "L2.c.3", 40


def listed(browser, prefix="n"):
    """The top-five table as (character, characters back, contribution, position) rows."""
    rows = texts_of(browser, f"#{prefix}-why-top tr", until=lambda rows: len(rows) > 1)[1:]
    out = []
    for row in rows:
        char, back, value, position = row.rsplit(" ", 3)
        out.append((char, int(back), float(value), int(position.replace(",", ""))))
    return out


def expected(result):
    return [(name_of(ch), result.pos - p, round(c, 4), p) for p, ch, c in result.top(5)]


def same_rows(got, want):
    assert [(c, b, p) for c, b, _, p in got] == [(c, b, p) for c, b, _, p in want]
    assert [v for *_, v, _ in got] == pytest.approx([v for *_, v, _ in want], abs=2e-4)


def wait_for_line(browser, pos, prefix="n"):
    return text_of(browser, f"#{prefix}-why-line", until=lambda t: f"at position {pos:,} =" in t)


def open_neuron(browser, base, query):
    browser.get(base + f"/?neuron={NEURON}&pos={START}" + query)
    WebDriverWait(browser, 30).until(lambda d: panel_label(d) == NEURON)


def span(browser, i, panel="text-panel"):
    return browser.find_element(By.CSS_SELECTOR, f'#{panel} .ch[data-i="{i}"]')


def style_of(browser, i, prop, panel="text-panel"):
    return browser.execute_script(f"return getComputedStyle(arguments[0]).{prop}", span(browser, i, panel))


def test_a_position_and_a_method_are_read_from_the_url_or_said_wrong_in_one_sentence():
    assert clicked_position(None, 10) == (None, None)
    assert clicked_position("7", 10) == (7, None)
    assert clicked_position("12", 10) == (9, "Position 12 is outside the text (0-9); showing why at 9.")
    assert clicked_position("-3", 10)[0] == 0
    pos, why = clicked_position("x1", 10)
    assert pos is None and why.startswith("The clicked position 'x1' is not a number;") and why.count(".") == 1
    assert chosen_method(None) == ("occlusion", None)
    assert chosen_method("grad") == ("grad", None)
    unknown = "There is no attribution method 'shap' (choose occlusion, grad, ig); showing occlusion."
    assert chosen_method("shap") == ("occlusion", unknown)


def test_clicking_a_character_shades_the_ones_before_it_and_lists_the_top_five(server, browser, tiny_store):
    base, _ = server
    open_neuron(browser, base, "")
    colours = [style_of(browser, i, "backgroundColor") for i in range(31)]
    span(browser, 30).click()
    pos = START + 30
    WebDriverWait(browser, 30).until(lambda d: f"why={pos}" in d.current_url)
    line = wait_for_line(browser, pos)
    want = lstmviz.attribute(tiny_store, NEURON, pos=pos, method="occlusion")
    assert f"{NEURON} at position {pos} = {want.value:+.4f}, by occlusion (exact)" in line
    assert f"completeness error {100 * want.completeness_error:.1f}%" in line
    same_rows(listed(browser), expected(want))
    # a bar under each character that counts, red for raising, blue for lowering; the colours stay
    top_position, _, top_value = want.top(1)[0]
    bar = style_of(browser, top_position - START, "boxShadow")
    assert bar.startswith("rgb(178, 24, 43)" if top_value > 0 else "rgb(33, 102, 172)")  # the largest: full colour
    assert bar.endswith("0px 5px 0px 0px")  # and the tallest
    assert [style_of(browser, i, "backgroundColor") for i in range(31)] == colours
    assert "solid" in style_of(browser, 30, "outline")  # the clicked character
    assert style_of(browser, 31, "boxShadow") == "none"  # nothing after it
    assert severe_console_errors(browser) == []


def test_the_url_restores_the_view_with_its_method_and_the_switch_changes_it(server, browser, tiny_store):
    base, _ = server
    pos = START + 12
    open_neuron(browser, base, f"&why={pos}&method=grad")
    wait_for_line(browser, pos)
    same_rows(listed(browser), expected(lstmviz.attribute(tiny_store, NEURON, pos=pos, method="grad")))
    assert browser.find_element(By.CSS_SELECTOR, '#n-why-method input[value="grad"]').is_selected()
    browser.find_element(By.CSS_SELECTOR, '#n-why-method input[value="ig"]').click()
    WebDriverWait(browser, 30).until(lambda d: "method=ig" in d.current_url)
    text_of(browser, "#n-why-line", until=lambda t: "integrated gradients" in t)
    same_rows(listed(browser), expected(lstmviz.attribute(tiny_store, NEURON, pos=pos, method="ig")))
    browser.refresh()
    text_of(browser, "#n-why-line", until=lambda t: "integrated gradients" in t and f"position {pos} =" in t)


def test_clear_and_a_click_beside_the_characters_take_the_view_away(server, browser):
    base, _ = server
    open_neuron(browser, base, f"&why={START + 5}")
    wait_for_line(browser, START + 5)
    browser.find_element(By.ID, "n-why-clear").click()
    WebDriverWait(browser, 30).until(lambda d: "why=" not in d.current_url)
    WebDriverWait(browser, 30).until(lambda d: not d.find_elements(By.ID, "n-why-top"))
    assert style_of(browser, 0, "boxShadow") == "none"
    span(browser, 8).click()
    WebDriverWait(browser, 30).until(lambda d: f"why={START + 8}" in d.current_url)
    wait_for_line(browser, START + 8)
    span(browser, 8).click()  # the same character again
    WebDriverWait(browser, 30).until(lambda d: "why=" not in d.current_url)


@pytest.mark.parametrize(
    ("why", "sentence", "shown"),
    [
        ("abc", "The clicked position 'abc' is not a number; click a character to see why it is what it is.", None),
        ("99999999", "Position 99,999,999 is outside the text (0-{last:,}); showing why at {last:,}.", "last"),
    ],
)
def test_a_bad_position_in_the_url_is_one_sentence_and_the_nearest_view(server, browser, tiny_store, why, sentence, shown):
    base, _ = server
    last = len(tiny_store) - 1
    open_neuron(browser, base, f"&why={why}")
    assert text_of(browser, "#n-why-message") == sentence.format(last=last)
    if shown:
        wait_for_line(browser, last)
        same_rows(listed(browser), expected(lstmviz.attribute(tiny_store, NEURON, pos=last, method="occlusion")))
    else:
        assert not browser.find_elements(By.ID, "n-why-top")
    assert panel_label(browser) == NEURON  # the page itself is shown as ever
    assert severe_console_errors(browser) == []


def direct_shares(tiny_store, tiny_checkpoint, pos, char_id):
    """Each top-layer unit's share of the logit of ``char_id`` after ``pos``: its recorded h
    times its decoder weight."""
    model = load_checkpoint(tiny_checkpoint).model
    layers = model.config.num_layers
    h = np.asarray(tiny_store.series_block(layers, "h"))[:, pos]
    return {f"L{layers}.h.{j}": float(v) for j, v in enumerate(h * model.decoder.weight[char_id].detach().numpy())}


def shown_units(browser, css):
    words = text_of(browser, css).split()
    return {unit: float(value) for unit, value in zip(words[::2], words[1::2], strict=True)}


def test_the_prediction_there_is_shared_among_the_units_and_any_guess_can_be_explained(
    server, browser, tiny_store, tiny_checkpoint
):
    base, _ = server
    pos = START + 20
    open_neuron(browser, base, f"&why={pos}")
    wait_for_line(browser, pos)
    guesses = texts_of(browser, "#n-why-guess label", until=lambda t: len(t) >= 2)
    top_ids = np.asarray(tiny_store.top_ids[pos])
    vocab = tiny_store.vocab_chars
    assert guesses[0].startswith(f"'{name_of(vocab[top_ids[0]])}' ")  # the model's likeliest first, as recorded
    shares = direct_shares(tiny_store, tiny_checkpoint, pos, int(top_ids[0]))
    shown = shown_units(browser, "#n-why-direct")
    assert list(shown) == sorted(shares, key=lambda u: -abs(shares[u]))[: len(shown)]
    assert list(shown.values()) == pytest.approx([shares[u] for u in shown], abs=2e-3)
    link = browser.find_element(By.CSS_SELECTOR, "#n-why-direct a")
    assert link.get_attribute("href").endswith(f"neuron={next(iter(shown))}")
    browser.find_elements(By.CSS_SELECTOR, "#n-why-guess input")[1].click()  # the second guess
    second = int(top_ids[1])
    explained = f"Next character after position {pos}: '{name_of(vocab[second])}'"
    text_of(browser, "#n-why-prediction", until=lambda t: t.startswith(explained))
    shares = direct_shares(tiny_store, tiny_checkpoint, pos, second)
    shown = shown_units(browser, "#n-why-direct")
    assert list(shown.values()) == pytest.approx([shares[u] for u in shown], abs=2e-3)


def test_a_click_in_typed_text_is_explained_in_that_text_and_typing_takes_it_away(server, browser, tiny_checkpoint):
    base, _ = server
    text = "x = 'a b'  # c\nif x:\n    y = \"z\"\n"
    browser.get(base + "/text?" + urlencode({"neuron": "L1.c.2", "text": text}))
    WebDriverWait(browser, 30).until(lambda d: panel_label(d, "typed-panel") == "L1.c.2")
    span(browser, 25, "typed-panel").click()  # the y
    WebDriverWait(browser, 30).until(lambda d: "why=25" in d.current_url)
    wait_for_line(browser, 25, "t")
    want = lstmviz.attribute(tiny_checkpoint, "L1.c.2", pos=25, text=text, method="occlusion")
    same_rows(listed(browser, "t"), expected(want))
    assert style_of(browser, want.top(1)[0][0], "boxShadow", "typed-panel").endswith("0px 5px 0px 0px")
    browser.find_element(By.ID, "typed-input").send_keys("w")  # a new text: the click was in the old one
    WebDriverWait(browser, 30).until(lambda d: parse_qs(urlsplit(d.current_url).query)["text"][0].endswith("w"))
    assert "why=" not in browser.current_url
    WebDriverWait(browser, 30).until(lambda d: not d.find_elements(By.ID, "t-why-top"))


def generated(browser, panel):
    return browser.execute_script(f"return document.getElementById('{panel}').lstmvizData.chars.join('')")


def a_letter_from(text, i):
    """The first letter at or after ``i`` (a newline's box is the rest of its line: no place to click)."""
    return next(j for j in range(i, len(text)) if text[j].isalpha())


def click(browser, pos, panel):
    """A click on a character of a panel in a grid column: dispatched on the character, as
    Chromium's driver aims beside an inline character there."""
    browser.execute_script("arguments[0].click()", span(browser, pos, panel))


def test_a_click_in_generated_text_is_explained_in_the_text_generated_with_nothing_held(server, browser, tiny_checkpoint):
    base, _ = server
    browser.get(base + "/generate?prime=def%20&n=40&color=L2.c.3")
    WebDriverWait(browser, 30).until(lambda d: panel_label(d, "gen-text-held") == "L2.c.3")
    text = generated(browser, "gen-text-held")
    pos = a_letter_from(text, 20)
    click(browser, pos, "gen-text-held")
    WebDriverWait(browser, 30).until(lambda d: f"why={pos}" in d.current_url)
    wait_for_line(browser, pos, "g")
    same_rows(
        listed(browser, "g"), expected(lstmviz.attribute(tiny_checkpoint, "L2.c.3", pos=pos, text=text, method="occlusion"))
    )
    # holding a neuron: its text is not the model as trained, so only the other is explained
    browser.get(base + "/generate?prime=def%20&n=40&color=L2.c.3&clamp=L1.c.5:2")
    WebDriverWait(browser, 30).until(lambda d: panel_label(d, "gen-text-plain") == "L2.c.3")
    assert "click a character of the text with nothing held" in text_of(browser, "#gen-summary")
    click(browser, a_letter_from(generated(browser, "gen-text-held"), 20), "gen-text-held")  # nothing happens
    text = generated(browser, "gen-text-plain")
    pos = a_letter_from(text, 25)
    click(browser, pos, "gen-text-plain")
    WebDriverWait(browser, 30).until(lambda d: f"why={pos}" in d.current_url)
    wait_for_line(browser, pos, "g")
    want = lstmviz.attribute(tiny_checkpoint, "L2.c.3", pos=pos, text=text, method="occlusion")
    same_rows(listed(browser, "g"), expected(want))
    assert style_of(browser, want.top(1)[0][0], "boxShadow", "gen-text-plain").endswith("0px 5px 0px 0px")
    assert style_of(browser, want.top(1)[0][0], "boxShadow", "gen-text-held") == "none"
