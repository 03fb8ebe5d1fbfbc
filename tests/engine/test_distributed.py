"""Scale-out: a Dask LocalCluster of 2 workers produces the same workspace as one process."""

import numpy as np
import pytest
import torch

from core.errors import ConfigError
from core.ingest.distributed import DaskParts, connect
from core.ingest.embed.mapper import TileEmbedder
from core.ingest.pipeline import IngestOptions, ingest
from core.model.loading import load_model
from core.store.workspace import Workspace
from tiles import read_catalog

SCENE = "berkeley_z17_webmercator_naip.tif"


def test_bad_dask_addresses_are_refused():
    for address in ("local:", "local:0", "scheduler:8786"):
        with pytest.raises(ConfigError):
            connect(address)


@pytest.mark.slow
def test_local_cluster_ingest_equals_single_process(model_checkpoint, scenes_dir, tmp_path):
    options = IngestOptions(batch_size=8, workers=0, part_size=16)
    single = Workspace(tmp_path / "single")
    loaded = load_model(single, str(model_checkpoint), "cpu")
    embedder = TileEmbedder(loaded.model, loaded.device)
    ingest(scenes_dir / SCENE, single, embedder, loaded.tag, "s", options)

    client = connect("local:2")
    try:
        threads = torch.get_num_threads()

        def factory(reader, windows):
            return DaskParts(client, str(loaded.path), embedder.names, reader, windows, 8, threads)

        dask_ws = Workspace(tmp_path / "dask")
        ingest(
            scenes_dir / SCENE, dask_ws, embedder, loaded.tag, "s", options, parts_factory=factory
        )
        workers = client.run(
            lambda: __import__("core.ingest.distributed", fromlist=["_MODELS"])._MODELS.keys()
        )
    finally:
        client.close()
    assert len(workers) == 2 and all(len(list(keys)) == 1 for keys in workers.values())
    a, b = single.scene("s"), dask_ws.scene("s")
    assert read_catalog(a.catalog).equals(read_catalog(b.catalog))
    for name in ("visual", "gate"):
        np.testing.assert_array_equal(
            np.load(a.embeddings / f"{name}.npy"), np.load(b.embeddings / f"{name}.npy")
        )
    for index in ("visual.ann", "text.ann"):
        assert (a.root / index).read_bytes() == (b.root / index).read_bytes()
    assert b.read_manifest().ready
