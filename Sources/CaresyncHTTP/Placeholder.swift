// placeholder until the CaresyncHTTP issue lands
