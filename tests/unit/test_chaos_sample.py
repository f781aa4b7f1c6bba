"""The short chaos run in ``make test`` is a sample of the fault scenarios: one F1, one F2
and two of F3-F6 per commit, the same for one commit, and every scenario over commits."""

from __future__ import annotations

import pytest

from tests.chaos import test_faults


def test_a_sample_has_one_f1_one_f2_and_two_others() -> None:
    names = list(test_faults.SCENARIOS)
    for pick in range(50):
        chosen = test_faults.sample(names, pick)
        assert len(chosen) == 4, chosen
        assert sum(n.startswith("F1-") for n in chosen) == 1, chosen
        assert sum(n.startswith("F2-") for n in chosen) == 1, chosen
        assert chosen == test_faults.sample(names, pick)


def test_over_commits_every_scenario_runs() -> None:
    names = list(test_faults.SCENARIOS)
    seen = {n for pick in range(64) for n in test_faults.sample(names, pick)}
    assert seen == set(names)


def test_all_and_a_list_choose_those(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISSIONLINK_CHAOS_SCENARIOS", "all")
    assert test_faults.chosen_scenarios() == list(test_faults.SCENARIOS)
    monkeypatch.setenv("MISSIONLINK_CHAOS_SCENARIOS", "F3-postgres-crash, F4-broker-restart")
    assert test_faults.chosen_scenarios() == ["F3-postgres-crash", "F4-broker-restart"]
    monkeypatch.setenv("MISSIONLINK_CHAOS_SCENARIOS", "F9-nothing")
    with pytest.raises(ValueError, match="F9-nothing"):
        test_faults.chosen_scenarios()


def test_the_default_follows_the_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MISSIONLINK_CHAOS_SCENARIOS", raising=False)
    monkeypatch.setenv("MISSIONLINK_CHAOS_PICK", "7")
    assert test_faults.chosen_scenarios() == test_faults.sample(list(test_faults.SCENARIOS), 7)
