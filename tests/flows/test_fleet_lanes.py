"""How a fleet is split into lanes: pure functions, no server."""

from __future__ import annotations

from flows.fleet import lanes_for, order


def test_lanes_go_round_robin_over_the_online_workers_and_never_outnumber_the_agents() -> None:
    assert lanes_for(["w1", "w2"], 10, 1) == ["w1", "w2"]
    assert lanes_for(["w1", "w2"], 10, 2) == ["w1", "w2", "w1", "w2"]
    assert lanes_for(["w1", "w2", "w3"], 2, 1) == ["w1", "w2"]
    assert lanes_for(["w1"], 0, 1) == ["w1"]


def test_a_lane_tries_its_own_share_first_then_the_others_from_their_ends() -> None:
    fleet = [f"r{i}" for i in range(7)]
    assert order(fleet, 0, 2) == ["r0", "r2", "r4", "r6", "r5", "r3", "r1"]
    assert order(fleet, 1, 2) == ["r1", "r3", "r5", "r6", "r4", "r2", "r0"]
    for lane in range(3):  # every lane can reach every agent, each once
        tried = order(fleet, lane, 3)
        assert sorted(tried) == sorted(fleet)
        assert tried[0] == fleet[lane]
    assert order(fleet, 0, 1) == fleet
