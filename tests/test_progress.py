"""The progress display: readable at 80 columns on a terminal, periodic plain lines in a log file."""

from __future__ import annotations

import io

from ebgan.progress import Progress, format_duration


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


VALUES = {
    "loss_d": 9.6712,
    "loss_g": 4.2111,
    "energy_real": 8.5,
    "energy_fake": 10.2,
    "pt": 0.3312,
    "margin": 10.0,
    "lr_scale": 1.0,
}


def test_format_duration():
    assert [format_duration(s) for s in (0, 59.4, 75, 3725, -1, float("inf"))] == [
        "00:00",
        "00:59",
        "01:15",
        "1:02:05",
        "?",
        "?",
    ]


def test_line_fits_80_columns_and_keeps_counts_times_and_whole_values():
    clock = Clock()
    p = Progress(12000, desc="ebgan mnist", stream=Tty(), clock=clock, width=80)
    clock.t = 62.0
    p.update(2400, VALUES)
    line = p.line(width=79)
    assert len(line) <= 79
    assert line.startswith("ebgan mnist 2400/12000  20% 01:02<04:08 38.7 it/s  loss_d 9.67  loss_g 4.21")
    # every value shown is shown whole: no cut-off number at the end
    shown = line.split("it/s", 1)[1].split()
    assert len(shown) % 2 == 0 and all(shown[i] in VALUES for i in range(0, len(shown), 2))
    wide = p.line(width=200)  # room to spare: every value, and a bar
    assert "lr_scale 1" in wide and "|" in wide and len(wide) <= 200


def test_terminal_redraws_in_place_at_most_every_interval():
    clock, out = Clock(), Tty()
    p = Progress(100, stream=out, clock=clock, width=80, interval=0.5)
    for step in range(1, 101):
        clock.t = step * 0.01  # 100 steps in one second
        p.update(step, {"loss_d": 1.0})
    p.close()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, finished at close
    assert 2 <= text.count("\r") <= 4  # first draw, one at 0.5 s, one at 1.0 s, the final one
    assert "100/100 100%" in text.split("\r")[-1]


def test_log_file_gets_whole_lines_every_log_interval():
    clock, out = Clock(), io.StringIO()
    p = Progress(1000, stream=out, clock=clock, log_interval=30.0)
    for step in range(1, 1001):
        clock.t = step * 0.1  # 100 s in all
        p.update(step, {"loss_d": 2.0})
    p.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [ln.split()[0] for ln in lines] == ["300/1000", "600/1000", "900/1000", "1000/1000"]
    assert lines[0] == "300/1000  30% 00:30<01:10 10.0 it/s  loss_d 2"


def test_write_clears_the_live_line_prints_the_message_and_redraws():
    clock, out = Clock(), Tty()
    p = Progress(10, stream=out, clock=clock, width=80)
    clock.t = 1.0
    p.update(1)
    live = p.line(width=79)
    p.write("a message")
    assert out.getvalue() == f"\r{live}\r{' ' * len(live)}\ra message\n\r{live}"
