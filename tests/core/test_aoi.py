"""Areas of interest: GeoJSON in, checked polygons out, and the catalog tiles they touch."""

import json
import pickle

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, box, mapping

from bench.saw_tooth import saw_tooth
from core.errors import AreaError
from core.search.aoi import MAX_AREA_KM2, parse_aoi, read_aoi, tiles_in
from core.search.tile_columns import TileColumns
from tiles import TilingConfig, build_catalog

BERKELEY = "berkeley_z17_webmercator_naip.tif"
UTM = "naip_m_4709963_se_14_1_20200831_5m.tif"  # curved edges in lon/lat
SQUARE = box(-122.26, 37.87, -122.25, 37.88)


@pytest.fixture(scope="module", params=[BERKELEY, UTM])
def catalog(request, scenes_dir):
    return build_catalog(scenes_dir / request.param, TilingConfig(sizes=(128, 256)))


def corner_box(catalog, fraction=0.4):
    lon0, lat0, lon1, lat1 = catalog.total_bounds
    return box(lon0, lat0, lon0 + (lon1 - lon0) * fraction, lat0 + (lat1 - lat0) * fraction)


@pytest.mark.parametrize(
    "document",
    [
        mapping(SQUARE),
        {"type": "Feature", "properties": {}, "geometry": mapping(SQUARE)},
        {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "geometry": mapping(SQUARE)}],
        },
        {"type": "MultiPolygon", "coordinates": [mapping(SQUARE)["coordinates"]]},
        {**mapping(SQUARE), "crs": {"type": "name", "properties": {"name": "EPSG:4326"}}},
    ],
    ids=["polygon", "feature", "collection", "multipolygon", "named-crs"],
)
def test_geojson_shapes_give_the_same_area(document):
    area = parse_aoi(json.dumps(document))
    assert area.geometry.equals(SQUARE) and not area.repaired
    assert area.km2 == pytest.approx(0.976, rel=0.01)  # 0.01 deg x 0.01 deg at 37.9 N
    assert parse_aoi(document) == area  # an object parses as its text does


def test_two_features_are_one_area():
    other = box(-122.24, 37.87, -122.23, 37.88)
    collection = {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "geometry": mapping(g)} for g in (SQUARE, other)],
    }
    area = parse_aoi(collection)
    assert area.geometry.geom_type == "MultiPolygon" and area.geometry.area == pytest.approx(2e-4)


def test_a_polygon_crossing_itself_is_repaired_and_flagged():
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[0, 0], [0.01, 0.01], [0.01, 0], [0, 0.01], [0, 0]]],
    }
    area = parse_aoi(bowtie)
    assert area.repaired and area.geometry.is_valid and area.geometry.area > 0
    assert "repaired" in area.describe()


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("not json", "not GeoJSON"),
        ('{"type": "FeatureCollection", "features": []}', "empty"),
        ('{"type": "Point", "coordinates": [0, 0]}', "a Point"),
        ('{"type": "Feature", "geometry": null}', "no geometry"),
        (
            '{"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0,0],[1,1]]}}',
            "LineString",
        ),
        ('{"type": "Polygon", "coordinates": [[[0,0],[1,1],[2,2],[0,0]]]}', "encloses no ground"),
        ('{"type": "Polygon", "coordinates": "x"}', "cannot be read"),
        ('{"coordinates": []}', "without a type"),
        (
            json.dumps(mapping(box(564000, 4180000, 565000, 4181000))),
            "not longitude/latitude",
        ),
        (
            json.dumps(
                {**mapping(SQUARE), "crs": {"type": "name", "properties": {"name": "EPSG:3857"}}}
            ),
            "EPSG:3857",
        ),
        (json.dumps(mapping(box(-100, -60, 100, 60))), f"{MAX_AREA_KM2:,.0f} km²"),
    ],
)
def test_unusable_areas_are_refused_with_the_reason(document, says):
    with pytest.raises(AreaError, match=says):
        parse_aoi(document)


def test_read_aoi_names_a_missing_file(tmp_path):
    with pytest.raises(AreaError, match="cannot read the area file"):
        read_aoi(tmp_path / "nowhere.geojson")
    (tmp_path / "a.geojson").write_text(json.dumps(mapping(SQUARE)))
    assert read_aoi(tmp_path / "a.geojson").geometry.equals(SQUARE)


def test_tiles_in_are_exactly_the_footprints_touching_the_area(catalog):
    columns = TileColumns.from_catalog(catalog)
    assert columns.stored is None  # footprints rebuilt from windows, as search holds them
    for fraction in (0.05, 0.4, 0.6):
        area = parse_aoi(mapping(corner_box(catalog, fraction)))
        inside = tiles_in(columns, area)
        touching = np.flatnonzero(catalog.geometry.intersects(area.geometry).to_numpy())
        assert 0 < len(inside) < len(catalog) and np.array_equal(inside, touching)
        assert np.array_equal(catalog.tile_id.to_numpy()[inside], inside)  # positions are ids


def test_an_area_beside_the_scene_holds_no_tile(catalog):
    lon0, lat0, _, _ = catalog.total_bounds
    far = parse_aoi(mapping(box(lon0 - 0.02, lat0 - 0.02, lon0 - 0.01, lat0 - 0.01)))
    assert len(tiles_in(TileColumns.from_catalog(catalog), far)) == 0


BOWTIE = [[0, 0], [0.01, 0.01], [0.01, 0], [0, 0.01], [0, 0]]
SHIFTED_BOWTIE = [[x + 0.005, y] for x, y in BOWTIE]


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (
            '{"type": "Polygon", "coordinates": [[[0,0],[0.01,NaN],[0.01,0.01],[0,0]]]}',
            "^the area has a coordinate that is not a number \\(NaN or Infinity\\)",
        ),
        (
            '{"type": "Polygon", "coordinates": [[[0,0],[0.01,Infinity],[0.01,0.01],[0,0]]]}',
            "^the area has a coordinate that is not a number",
        ),
        (
            '{"type": "Polygon", "coordinates": [[[0,0],[-Infinity,0],[0.01,0.01],[0,0]]]}',
            "^the area has a coordinate that is not a number",
        ),
        (
            '{"type": "Polygon", "coordinates": [[[0,0],[0.01,1e400],[0.01,0.01],[0,0]]]}',
            "^the area has a",
        ),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"type": "Feature", "geometry": ' * 5_000 + "null" + "}" * 5_000, "nested too deeply"),
        ('{"type": "Polygon", "coordinates": ' + "[" * 5_000 + "]" * 5_000 + "}", "nested"),
        ('{"type": "FeatureCollection", "features": 5}', "features are not a list"),
        (
            '{"type": "FeatureCollection", "features": [{"type": "FeatureCollection", '
            '"features": []}]}',
            "not a GeoJSON Feature",
        ),
        ('{"type": "GeometryCollection", "geometries": []}', "a GeometryCollection"),
        (
            '{"type": "Feature", "geometry": {"type": "MultiLineString", "coordinates": []}}',
            "holds a MultiLineString",
        ),
        ('{"type": "Polygon", "coordinates": []}', "empty"),
        ('{"type": "MultiPolygon", "coordinates": [[]]}', "empty"),
        ('{"type": "Polygon", "coordinates": [[[0,0],[1,1]]]}', "cannot be read"),
    ],
    ids=[
        "nan",
        "infinity",
        "minus-infinity",
        "overflow",
        "deep-arrays",
        "deep-objects",
        "deep-coordinates",
        "features-not-a-list",
        "nested-collection",
        "geometry-collection",
        "lines",
        "empty-polygon",
        "empty-multipolygon",
        "two-corners",
    ],
)
def test_malformed_areas_get_one_clear_message(document, says):
    with pytest.raises(AreaError, match=says):
        parse_aoi(document)


def test_a_nan_in_a_drawn_area_is_refused_too():
    """The map hands its drawing over as an object, not text."""
    drawn = {"type": "Polygon", "coordinates": [[[0, 0], [0.01, float("nan")], [0.01, 0], [0, 0]]]}
    with pytest.raises(AreaError, match="not a number"):
        parse_aoi({"type": "Feature", "geometry": drawn})


@pytest.mark.parametrize(
    "document",
    [
        {"type": "MultiPolygon", "coordinates": [[BOWTIE], [SHIFTED_BOWTIE]]},
        {
            "type": "FeatureCollection",
            "features": [
                {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]}}
                for ring in (BOWTIE, SHIFTED_BOWTIE)
            ],
        },
    ],
    ids=["multipolygon", "collection"],
)
def test_overlapping_parts_that_cross_themselves_are_repaired(document):
    area = parse_aoi(document)
    assert area.repaired and area.geometry.is_valid
    assert area.geometry.area == pytest.approx(8.75e-5)  # two bow-ties of 5e-5 overlapping


def test_an_area_over_the_size_limit_is_refused_before_it_is_parsed(tmp_path):
    """16 MB of GeoJSON (a square and a large property) is refused, however it comes in."""
    document = {"type": "Feature", "properties": {"note": "x" * 16 * 2**20}}
    text = json.dumps({**document, "geometry": mapping(SQUARE)})
    for source in (text, text.encode(), json.loads(text)):
        with pytest.raises(AreaError, match=r"takes 16\.0 MB, more than the 5 MB .*_AREA_MAX_MB"):
            parse_aoi(source)
    path = tmp_path / "big.geojson"
    path.write_text(text)
    with pytest.raises(AreaError, match="more than the 5 MB"):
        read_aoi(path)


def test_the_size_limit_is_a_setting(monkeypatch):
    document = {"type": "Feature", "properties": {"note": "x" * 2**21}, "geometry": mapping(SQUARE)}
    assert parse_aoi(document).geometry.equals(SQUARE)
    monkeypatch.setenv("SCENESEEK_AREA_MAX_MB", "1")
    with pytest.raises(AreaError, match=r"takes 2\.0 MB, more than the 1 MB"):
        parse_aoi(document)


def test_an_area_with_too_many_vertices_is_simplified_and_says_so(monkeypatch):
    monkeypatch.setenv("SCENESEEK_AREA_MAX_VERTICES", "1000")
    circle = Point(-122.26, 37.87).buffer(0.01, quad_segs=1250)
    area = parse_aoi(mapping(circle))
    assert area.simplified_from == 5001 and 500 < area.vertices <= 1000
    assert area.geometry.is_valid and not area.repaired
    assert area.geometry.hausdorff_distance(circle) < 1e-5  # about a metre
    assert f"simplified from 5,001 to {area.vertices:,} vertices" in area.describe()
    kept = parse_aoi(mapping(Point(-122.26, 37.87).buffer(0.01, quad_segs=100)))
    assert kept.simplified_from == 0 and "simplified" not in kept.describe()


def test_a_saw_tooth_over_the_vertex_limit_is_simplified_to_fit():
    area = parse_aoi(saw_tooth(SQUARE.bounds, 40_004))
    assert area.simplified_from == 40_004 and area.vertices <= 10_000
    assert area.geometry.is_valid and area.km2 == pytest.approx(0.976 * 0.55, rel=0.05)


def test_too_many_separate_polygons_are_refused(monkeypatch):
    monkeypatch.setenv("SCENESEEK_AREA_MAX_VERTICES", "100")
    squares = [box(-122.26 + i * 1e-3, 37.87, -122.2595 + i * 1e-3, 37.8705) for i in range(30)]
    with pytest.raises(AreaError, match="has 30 polygons and holes, too many to fit in the 100"):
        parse_aoi(mapping(MultiPolygon(squares)))


@pytest.mark.parametrize(
    ("vertices", "limit", "kept"), [(10_004, "20000", 10_004), (10_004, "", 0)]
)
def test_a_saw_tooth_area_gets_exactly_the_footprints_it_touches(
    catalog, monkeypatch, vertices, limit, kept
):
    """The shape that stalled search: teeth across the scene, every tile along an edge."""
    monkeypatch.setenv("SCENESEEK_AREA_MAX_VERTICES", limit)
    lon0, lat0, lon1, lat1 = catalog.total_bounds
    middle = (lon0 + lon1) / 2
    area = parse_aoi(saw_tooth((lon0 - 1e-4, lat0 + 1e-4, middle, lat1 + 1e-4), vertices))
    assert area.vertices == kept if kept else area.simplified_from == vertices
    inside = tiles_in(TileColumns.from_catalog(catalog), area)
    touching = np.flatnonzero(shapely.intersects(area.geometry, catalog.geometry.to_numpy()))
    assert 0 < len(inside) < len(catalog) and np.array_equal(inside, touching)


def test_an_area_much_larger_than_the_scene_gets_the_tiles_under_it(catalog):
    lon0, lat0, lon1, lat1 = catalog.total_bounds
    middle = (lat0 + lat1) / 2
    around = parse_aoi(
        mapping(
            Point(lon0, middle).buffer(1.0, quad_segs=64).difference(box(lon0, lat0, lon1, middle))
        )
    )
    inside = tiles_in(TileColumns.from_catalog(catalog), around)
    touching = np.flatnonzero(shapely.intersects(around.geometry, catalog.geometry.to_numpy()))
    assert 0 < len(inside) < len(catalog) and np.array_equal(inside, touching)


def test_an_area_travels_to_other_processes_without_its_looked_up_tiles(catalog):
    area = parse_aoi(mapping(corner_box(catalog)))
    first = tiles_in(TileColumns.from_catalog(catalog), area)
    copy = pickle.loads(pickle.dumps(area))  # as Dask sends it to a shard
    assert copy == area and copy.geometry.equals(area.geometry)
    assert np.array_equal(tiles_in(TileColumns.from_catalog(catalog), copy), first)


def test_an_area_of_two_parts_gets_the_tiles_of_both(catalog):
    lon0, lat0, lon1, lat1 = catalog.total_bounds
    dx, dy = (lon1 - lon0) / 10, (lat1 - lat0) / 10
    near, far = box(lon0, lat0, lon0 + 2 * dx, lat0 + 2 * dy), box(lon1 - dx, lat1 - dy, lon1, lat1)
    area = parse_aoi(mapping(MultiPolygon([near, far])))
    inside = tiles_in(TileColumns.from_catalog(catalog), area)
    touching = np.flatnonzero(shapely.intersects(area.geometry, catalog.geometry.to_numpy()))
    assert np.array_equal(inside, touching)
    parts = [
        np.flatnonzero(shapely.intersects(p, catalog.geometry.to_numpy())) for p in (near, far)
    ]
    assert np.array_equal(inside, np.union1d(*parts)) and all(len(p) for p in parts)
