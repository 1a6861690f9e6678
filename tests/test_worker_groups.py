"""tests/conftest.py's worker groups: what pytest-xdist keeps on one worker."""

from __future__ import annotations

from tests.conftest import REPO, WORKER_GROUPS, worker_group


def test_every_worker_group_names_tests_that_exist() -> None:
    # A renamed module would otherwise leave its group silently empty (and its shared
    # fixture built on both workers).
    for prefix in WORKER_GROUPS:
        assert (REPO / prefix.split("::")[0]).exists(), prefix


def test_a_group_is_one_unit_and_every_other_test_its_own() -> None:
    crash = "tests/sim/test_crash.py::test_outside_a_crash_markets_move_no_more_than_real_ones"
    basis = "tests/sim/test_basis.py::test_the_basis_widens_with_a_fast_move_and_a_volatile_regime"
    assert worker_group(crash) == worker_group(basis) == "sim-recordings"
    assert worker_group("tests/dashboard/test_measured_map.py::test_x[a]") == "dashboard"
    other = "tests/sim/test_history.py::test_paced_follows_the_wall_clock"
    assert worker_group(other) == other
