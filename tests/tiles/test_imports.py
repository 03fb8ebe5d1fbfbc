import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODULES = [
    "tiles",
    "tiles.bands",
    "tiles.catalog",
    "tiles.errors",
    "tiles.footprint",
    "tiles.grid",
    "tiles.io",
    "tiles.overlay",
    "tiles.reader",
    "tiles.scene",
]


def test_tiles_never_imports_torch():
    code = f"import {', '.join(MODULES)}; import sys; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_errors_are_rooted_and_documented():
    import tiles.errors as errors

    for name in dir(errors):
        obj = getattr(errors, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, Exception)
            and obj.__module__ == errors.__name__
        ):
            assert obj.__doc__ and obj.__doc__.startswith("Raised when") or obj is errors.TilesError
            if issubclass(obj, Warning):
                assert issubclass(obj, UserWarning)
            else:
                assert issubclass(obj, errors.TilesError)


def test_every_export_resolves():
    import tiles

    assert sorted(tiles.__all__) == sorted(tiles._EXPORTS)
    for name in tiles.__all__:
        assert getattr(tiles, name) is not None, name
    assert tiles.WINDOW_FIELDS == ("col_off", "row_off", "width", "height")
