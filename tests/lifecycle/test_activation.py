"""Whether a new model replaces the active one: the policy, the score and the genres."""

from __future__ import annotations

import pytest

from shared.lifecycle.activation import decide_activation

NEW = {"track_accuracy_vote": 0.8}


@pytest.mark.parametrize(
    ("policy", "active", "error", "expected"),
    [
        ("if_better", {"track_accuracy_vote": 0.7}, None, True),
        ("if_better", {"track_accuracy_vote": 0.8}, None, True),  # ties go to the new model
        ("if_better", {"track_accuracy_vote": 0.9}, None, False),
        ("if_better", None, None, True),  # nothing active yet
        ("if_better", None, "genres differ", True),
        ("always", {"track_accuracy_vote": 0.99}, None, True),
        ("never", None, None, False),
    ],
)
def test_activation_policy(
    policy: str, active: dict[str, float] | None, error: str | None, expected: bool
) -> None:
    activate, reason = decide_activation(policy, NEW, active, compare_error=error)

    assert activate is expected
    assert reason


@pytest.mark.parametrize("error", [None, "it could not be loaded"])
def test_if_better_never_activates_a_model_of_other_genres(error: str | None) -> None:
    activate, reason = decide_activation(
        "if_better",
        {"track_accuracy_vote": 0.99},
        {"track_accuracy_vote": 0.2} if error is None else None,
        compare_error=error,
        genres=["blues", "jazz", "rock"],
        active_genres=["classical", "rock"],
    )

    assert activate is False
    assert "adds blues, jazz and lacks classical" in reason
    assert "never activated automatically" in reason


def test_same_genres_in_another_order_compare_by_score() -> None:
    assert decide_activation(
        "if_better", NEW, {"track_accuracy_vote": 0.5}, genres=["b", "a"], active_genres=["a", "b"]
    ) == (True, "track_accuracy_vote 0.800 >= active model's 0.500")


def test_no_policy_activates_other_genres_by_itself() -> None:
    for policy in ("always", "if_better"):
        activate, reason = decide_activation(
            policy, NEW, None, genres=["a", "b", "c"], active_genres=["a", "d"]
        )
        assert activate is False
        assert "it adds b, c and lacks d" in reason
        assert "an admin activates it by hand" in reason
    assert decide_activation("always", NEW, None, genres=["b", "a"], active_genres=["a", "b"]) == (
        True,
        "GENREFLOW_ACTIVATE_POLICY is 'always'",
    )
