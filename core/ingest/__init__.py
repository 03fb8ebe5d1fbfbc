"""From a GeoTIFF to stored vectors and indexes: tiling, embedding (``embed/``) and Dask."""
