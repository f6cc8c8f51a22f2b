"""The command line: help texts, option errors, and a small synthetic run."""

import json

import pytest
from scipy import stats

from chainnmf.cli import build_parser, main
from chainnmf.experiments.report import format_table, paired_test, summarize


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            "news",
            [
                "--rank",
                "--vector-weight",
                "--vector-mode",
                "--vector-loss",
                "--vocabulary-size",
                "--top-words",
                "--seeds",
                "--max-iter",
                "--tol",
                "--precision",
                "--output",
                "--quiet",
            ],
        ),
        (
            "synthetic",
            [
                "--loss",
                "--noise",
                "--block-density",
                "--seeds",
                "--max-iter",
                "--tol",
                "--precision",
                "--output",
                "--quiet",
            ],
        ),
    ],
)
def test_help_lists_every_option(capsys, command, options):
    """--help describes each option the command accepts."""
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for option in options:
        assert option in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["news", "--rank", "0"], "expected a whole number >= 1, got 0"),
        (["news", "--vector-weight", "-1"], "expected a finite number >= 0"),
        (["news", "--vector-mode", "abs"], "invalid choice: 'abs'"),
        (["synthetic", "--noise", "1.5"], "expected a number from 0 to 1"),
        (["synthetic", "--seeds", "1,1"], "seeds must be distinct"),
        (["synthetic", "--seeds", "a,b"], "comma-separated list"),
        (["fit"], "invalid choice: 'fit'"),
    ],
)
def test_bad_options_are_reported(capsys, argv, message):
    """Each bad option ends with exit status 2 and a message that names it."""
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_synthetic_runs_end_to_end(tmp_path, capsys):
    """One seed with few sweeps prints the Table-1 layout and writes its JSON."""
    main(
        [
            "synthetic",
            "--seeds",
            "1",
            "--max-iter",
            "20",
            "--output",
            str(tmp_path),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert "First matrix chained" in out
    record = json.loads((tmp_path / "synthetic.json").read_text())
    assert [row["links"] for row in record["rows"]] == [0, 0, 0, 1, 2]
    for row in record["rows"]:
        assert 0.0 <= row["mean"] <= 1.0


def test_summarize_uses_sample_std():
    """mean and std (ddof=1) of 1, 2, 3 are 2 and 1."""
    assert summarize([1.0, 2.0, 3.0]) == {"mean": 2.0, "std": 1.0}


def test_paired_test_matches_scipy():
    """The p-value is scipy.stats.ttest_rel's for the same pairs."""
    first, second = [0.40, 0.42, 0.41, 0.39], [0.45, 0.44, 0.47, 0.46]
    result = paired_test(first, second)
    assert result["p"] == pytest.approx(stats.ttest_rel(second, first).pvalue)
    assert result["mean_difference"] == pytest.approx(0.05)


def test_format_table_aligns_columns():
    """Every row of the table has the width of the widest cell per column."""
    text = format_table(["a", "value"], [["long name", 0.5], ["x", 1.25]])
    lines = text.splitlines()
    assert lines[0] == "a          value"
    assert lines[2] == "long name  0.500"
    assert lines[3] == "x          1.250"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["synthetic", "--seeds", "0,4294967296"], "seeds must be in [0, 4294967296)"),
        (["synthetic", "--seeds=-1,2"], "seeds must be in [0, 4294967296), got [-1]"),
        (["synthetic", "--seeds", "99999999999"], "expected at most 1000 seeds"),
    ],
)
def test_seed_range_is_checked(capsys, argv, message):
    """Seeds outside 32 bits and huge seed counts are rejected before any fit."""
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(argv)
    assert stop.value.code == 2
    assert message in capsys.readouterr().err


def test_unwritable_output_fails_first(tmp_path, capsys):
    """An output path that is a file is rejected before any fit runs."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as stop:
        main(["synthetic", "--seeds", "1", "--output", str(blocker / "sub")])
    assert stop.value.code == 2
    assert "cannot create the output folder" in capsys.readouterr().err


def test_help_shows_iteration_defaults(capsys):
    """news --help gives the defaults of --max-iter and --tol."""
    with pytest.raises(SystemExit):
        main(["news", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default 300)" in text
    assert "(default 1e-05)" in text
