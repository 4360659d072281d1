// placeholder until the SyncEngine issue lands
