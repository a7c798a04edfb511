"""``signalprop theory``: the printed table, the per-layer table, the phase diagram, errors.

``signalprop.cli.main`` is driven with only the theory subcommand registered, so these
tests do not depend on the other subcommands.
"""

import re

import pytest

import signalprop.cli as cli
from signalprop import theory


@pytest.fixture
def run(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_COMMANDS", ["theory"])

    def _run(*argv):
        code = cli.main(["theory", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def _table(out):
    rows = {}
    for line in out.splitlines():
        m = re.match(r"(\S.*?)\s{2,}(.*)$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_theory_is_a_registered_subcommand():
    assert "theory" in cli._COMMANDS


def test_prints_the_critical_point_by_default(run):
    code, out, _ = run("tanh")
    rows = _table(out)
    assert code == 0
    assert rows["sigma_w^2"] == "1" and rows["critical sigma_w^2"] == "1"
    assert rows["phase"] == "critical" and rows["class"] == "K*=0"
    assert rows["q*"] == "0" and rows["chi_1"] == "1"
    assert float(rows["gamma"]) == pytest.approx(theory.gamma("tanh"), rel=1e-5)
    for key in ("chi_par", "xi_c", "xi_q", "xi_grad", "c*"):
        assert key in rows


def test_given_initialisation_and_depth_table(run):
    code, out, _ = run("tanh", "--sigma-w2", "1.5", "--sigma-b2", "0.05", "--depth", "4")
    mf = theory.mean_field("tanh", 1.5, 0.05)
    rows = _table(out)
    assert code == 0 and rows["phase"] == "ordered"
    assert float(rows["q*"]) == pytest.approx(mf.q_star, rel=1e-5)
    assert float(rows["xi_c"]) == pytest.approx(mf.xi_c, rel=1e-5)
    assert float(rows["critical sigma_w^2"]) == pytest.approx(1.76095, rel=1e-5)
    layers = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\s", line)]
    assert [int(r[0]) for r in layers] == [0, 1, 2, 3, 4]
    p = theory.propagate("tanh", 4, 1.5, 0.05, q0=1.0, c0=0.5)
    assert float(layers[-1][1]) == pytest.approx(p.q[-1], rel=1e-5)


def test_activation_parameters(run):
    code, out, _ = run("leaky_relu", "--param", "negative_slope=0.2")
    assert code == 0
    assert float(_table(out)["critical sigma_w^2"]) == pytest.approx(2 / 1.04, rel=1e-5)


def test_phase_diagram_file(run, tmp_path):
    path = tmp_path / "pd.png"
    code, out, _ = run("tanh", "--phase-diagram", str(path), "--grid", "12")
    assert code == 0 and path.read_bytes()[:4] == b"\x89PNG"
    assert str(path) in out


def test_no_critical_point_still_reports_a_given_initialisation(run):
    code, out, _ = run("gelu", "--sigma-w2", "1")
    assert code == 0 and _table(out)["critical sigma_w^2"].startswith("none (")


@pytest.mark.parametrize("argv,message", [
    (("tanhh",), "unknown activation 'tanhh'"),
    (("tanh", "--sigma-w2", "0"), "sigma_w2 must be > 0, got 0.0"),
    (("tanh", "--sigma-w2", "1", "--sigma-b2", "-1"), "sigma_b2 must be >= 0"),
    (("tanh", "--param", "slope"), "--param expects NAME=NUMBER"),
    (("leaky_relu", "--param", "slope=0.2"), "bad parameters"),
    (("gelu",), "no critical point"),
    (("tanh", "--phase-diagram", "x.png", "--sw-range", "4,1"), "LOW < HIGH"),
])
def test_errors_are_one_line_with_exit_status_2(run, argv, message):
    code, out, err = run(*argv)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
