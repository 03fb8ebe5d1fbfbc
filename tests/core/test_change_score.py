"""Change scores and change results, on synthetic vectors (no model, no scene)."""

import csv
import io
import math

import numpy as np
from shapely.geometry import box

from core.search.change.results import ChangeHit, ChangeResult, scene_date
from core.search.change.score import change_scores, residual_distances, robust_z


def _pair(n=400, dim=64, changed=(3, 77, 250), shift=0.8, seed=0):
    """Earlier vectors, and later ones: all moved by one shift vector, a few replaced."""
    rng = np.random.default_rng(seed)
    before = rng.standard_normal((n, dim)).astype(np.float32)
    after = before + shift * np.sqrt(dim) * rng.standard_normal(dim).astype(np.float32) / 4
    after += 0.3 * rng.standard_normal((n, dim)).astype(np.float32)
    after[list(changed)] = rng.standard_normal((len(changed), dim)) * 1.5
    return after.astype(np.float16), before.astype(np.float16)


def test_changed_tiles_come_first_despite_a_global_shift():
    after, before = _pair()
    z = change_scores(after, before, np.full(len(after), 256), np.ones(len(after), bool))
    assert set(np.argsort(-z)[:3]) == {3, 77, 250}
    assert np.sort(z)[-3] > 5 > np.sort(z)[-4]
    assert abs(float(np.median(z))) < 1e-6


def test_matches_the_formula_in_float64():
    after, before = _pair(n=50, changed=(3,))
    ids = np.array([0, 4, 5, 9, 17, 30, 31, 49])
    u = after[ids].astype(np.float64)
    w = before[ids].astype(np.float64)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    d = u - w
    expected = np.linalg.norm(d - d.mean(axis=0), axis=1)
    for chunk in (3, 1000):  # chunks and the non-contiguous path agree
        assert np.allclose(residual_distances(after, before, ids, chunk), expected, atol=1e-5)


def test_sizes_are_normalised_apart_and_uncovered_tiles_are_nan():
    after, before = _pair(n=300)
    groups = np.repeat([256, 512], 150)
    comparable = np.ones(300, bool)
    comparable[[10, 200]] = False
    z = change_scores(after, before, groups, comparable)
    assert np.isnan(z[[10, 200]]).all() and np.isfinite(np.delete(z, [10, 200])).all()
    for size in (256, 512):
        member = (groups == size) & comparable
        assert abs(float(np.median(z[member]))) < 1e-6
    alone = change_scores(after[150:], before[150:], groups[150:], comparable[150:])
    assert np.allclose(alone, z[150:], equal_nan=True)


def test_robust_z_ignores_a_few_outliers():
    values = np.concatenate([np.linspace(0.9, 1.1, 97), [5.0, 6.0, 7.0]])
    z = robust_z(values)
    assert z[-3] > 20 and abs(np.median(z)) < 1e-6
    assert robust_z(np.ones(4)).tolist() == [0, 0, 0, 0]
    assert robust_z(np.empty(0)).shape == (0,)


def test_dates_in_scene_names():
    assert scene_date("naip_m_4709963_se_14_1_20090818_5m") == "2009-08-18"
    assert scene_date("berkeley_z17") is None
    assert scene_date("x_20201345_y_20200229") == "2020-02-29"  # a month 13 is no date


def _result() -> ChangeResult:
    hits = [
        ChangeHit(1, 0.4, "late", 7, 256, (0, 0, 256, 256), box(0, 0, 1, 1), 3.5, 0.1, 0.5),
        ChangeHit(2, 0.2, "late", 9, 256, (128, 0, 256, 256), box(1, 0, 2, 1), math.nan),
    ]
    return ChangeResult(
        {"text": "tanks", "direction": "new"}, "m1", hits, before="early_20090818", after="late"
    )


def test_results_carry_both_dates_in_every_format():
    result = _result()
    data = result.to_dict()
    assert data["pair"]["before"] == {"scene": "early_20090818", "date": "2009-08-18"}
    assert data["hits"][0]["change"] == 3.5 and data["hits"][0]["after_score"] == 0.5
    assert data["hits"][1]["change"] is None and data["hits"][1]["before_score"] is None
    collection = result.to_geojson()
    assert collection["properties"]["pair"]["after"]["scene"] == "late"
    assert collection["features"][0]["properties"]["change"] == 3.5
    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert rows[0]["change"] == "3.500000" and rows[1]["change"] == ""
    assert rows[0]["before_scene"] == "early_20090818" and rows[0]["tile_id"] == "7"
    table = result.to_table().splitlines()
    assert "(early_20090818 -> late)" in table[0] and table[2].endswith("3.50")
