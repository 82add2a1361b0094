"""The argument checks the mlsd modules share (mlsd._checks): what they return and how they refuse."""

import numpy as np
import pandas as pd
import pytest

from mlsd._checks import check_frame, check_int_ids


def test_check_frame_returns_the_frame_and_names_the_missing_columns():
    frame = pd.DataFrame({"user_id": [1], "post_id": [2]})
    assert check_frame("rows", frame, ("user_id", "post_id")) is frame
    with pytest.raises(ValueError, match=r"rows lacks the columns \['time'\]"):
        check_frame("rows", frame, ("user_id", "time"))
    with pytest.raises(TypeError, match="rows must be a DataFrame, got dict"):
        check_frame("rows", {"user_id": [1]}, ("user_id",))


def test_check_int_ids_returns_int64_and_refuses_other_kinds_and_shapes():
    ids = check_int_ids("users", np.array([3, 1], dtype=np.int32))
    assert ids.dtype == np.int64 and ids.tolist() == [3, 1]
    assert check_int_ids("users", []).size == 0          # an empty list of ids is fine
    with pytest.raises(TypeError, match="users must hold integer ids, got float64"):
        check_int_ids("users", [1.0, 2.5])
    with pytest.raises(ValueError, match=r"users must be 1-D, got shape \(1, 2\)"):
        check_int_ids("users", [[1, 2]])
