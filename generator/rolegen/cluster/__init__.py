"""The cluster layer: what rolegen reads from and writes to live sites (kubectl, helm), the site state and its
diff against a render, the DR slot's status, rolegen's own records and lease on the sites, and the one guarded
write of the DCS config."""
