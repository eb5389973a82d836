"""The time a recording has left: measured on this machine as it runs (a clock is injected
here, so the rate is the test's, not the machine's)."""

from lstmviz.recording.pace import Pace, paced


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_time_left_follows_the_rate_measured_so_far():
    clock = Clock()
    pace = Pace(100_000, clock)
    assert pace.seconds_left() is None and pace.left_text() == "timing the first block"
    clock.now = 4.0
    pace.reached(4_000)  # the first block, warm-up and all: 1,000 characters a second
    assert pace.seconds_left() == 96_000 / 1_000 and pace.left_text() == "about 2 min left"
    clock.now = 5.0
    pace.reached(12_000)  # then 8,000 a second, measured after the first block only
    assert pace.seconds_left() == 88_000 / 8_000 and pace.left_text() == "about 11 s left"
    clock.now = 9.0
    pace.reached(20_000)  # slower now: 16,000 characters in 4 s since the first block
    assert pace.seconds_left() == 80_000 / 3_200 and pace.left_text() == "about 25 s left"


def test_a_page_s_progress_says_the_time_left_beside_the_fraction():
    clock, said = Clock(), []
    on_progress = paced(lambda fraction, note: said.append((fraction, note)), "recording the gates", clock)
    clock.now = 2.0
    on_progress(5_000, 50_000)  # 2,500 characters a second
    clock.now = 3.0
    on_progress(10_000, 50_000)  # 5,000 a second since
    assert said == [(0.1, "recording the gates; about 18 s left"), (0.2, "recording the gates; about 8 s left")]
