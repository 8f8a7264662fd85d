"""The offline layers: spec files → data (load, yamlio) → validated specs (validate, workspace) → rendered
values and patches (render, slots) → files on disk (output, generated). Nothing here talks to a cluster."""
