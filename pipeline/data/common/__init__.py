"""Low-level file formats shared by the data stages and the readers: errors, file names,
IDX and image encoding/decoding. Small and stable; declared as one folder in ``dvc.yaml``."""
