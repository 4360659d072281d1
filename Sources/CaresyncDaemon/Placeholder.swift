// placeholder until the CaresyncDaemon issue lands
